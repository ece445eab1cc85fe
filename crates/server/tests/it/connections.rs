//! Connection limits on a real socket: the connection cap, the idle timeout and the body-read
//! deadline, each with a small value so the test sees it act.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use std::sync::Arc;

use oriel_core::Config;
use oriel_server::{ConnectionLimits, router};

/// A server on a free loopback port with `limits`, until the returned sender is dropped.
async fn serve(dir: &std::path::Path, limits: ConnectionLimits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    let auth = oriel_server::Auth::load_or_create(dir, &config.server).unwrap();
    let limits_http = oriel_server::HttpLimits { body_read_timeout: Duration::from_millis(300) };
    let state = oriel_server::AppState::new(Arc::new(String::new), None, auth, limits_http);
    let log: Arc<dyn oriel_log::EventLog> = Arc::new(oriel_log::MemoryLog::new(1));
    state.log().set(Arc::clone(&log));
    let collector = oriel_collector::Collector::new(&config, log, Arc::new(oriel_core::SystemClock)).unwrap();
    state.collector().set(Arc::new(collector));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(oriel_server::serve(listener, router(state), limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(1),
    }
}

/// Sends `request` on a new connection and reads until the server closes it or `wait` passes.
fn exchange(stream: &mut TcpStream, request: &[u8], wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closed `stream` (end of file or reset) within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_a_freed_slot_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = serve(dir.path(), ConnectionLimits { max_connections: 2, ..limits() }).await;
    tokio::task::spawn_blocking(move || {
        let first = TcpStream::connect(addr).unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut third = TcpStream::connect(addr).unwrap();
        assert!(closed_within(&mut third, Duration::from_secs(5)), "a third connection is closed at once");
        let answer =
            exchange(&mut second, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 200"), "the connections within the cap are served: {answer}");
        drop(first);
        std::thread::sleep(Duration::from_millis(100));
        let mut again = TcpStream::connect(addr).unwrap();
        let answer =
            exchange(&mut again, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 200"), "a freed slot takes a new connection: {answer}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let idle = Duration::from_millis(300);
    let (addr, _stop) = serve(dir.path(), ConnectionLimits { idle_timeout: idle, ..limits() }).await;
    tokio::task::spawn_blocking(move || {
        // A served request first: the connection is kept alive, then left silent.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\nok\n") {
            stream.read_exact(&mut byte).unwrap();
            answer.push(byte[0]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        let started = Instant::now();
        assert!(closed_within(&mut stream, Duration::from_secs(10)), "the idle connection stays open");
        let took = started.elapsed();
        assert!(took >= idle, "closed after {took:?}, before the idle timeout");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_an_answer_after_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = serve(dir.path(), limits()).await;
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        // Part of the promised body, then nothing: the handler must not wait for the rest.
        let request = b"POST /e HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n{\"s\":";
        let answer = exchange(&mut stream, request, Duration::from_secs(10));
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
        assert!(answer.contains("the request body did not arrive within 0.3 s (server.body_read_timeout_ms)"), "{answer}");
        assert!(took >= Duration::from_millis(300), "answered after {took:?}, before the deadline");
    })
    .await
    .unwrap();
}
