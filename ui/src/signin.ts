// The page a browser without a credential sees: a name and password for users of
// server.users, and how an administrator gets a sign-in link.

import * as api from './api';
import { h, replace } from './dom';

export function signInPage(root: HTMLElement, done: () => void): void {
  const name = h('input', { id: 'name', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { class: 'notice error', role: 'alert', hidden: true });
  replace(
    root,
    h(
      'main',
      { class: 'signin', id: 'main' },
      h('h1', {}, 'Sign in to Oriel'),
      h(
        'form',
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            message.hidden = true;
            api
              .signIn(name.value, password.value)
              .then(done)
              .catch((err: Error) => {
                message.textContent = err.message;
                message.hidden = false;
              });
          },
        },
        h('label', { for: 'name' }, 'Name'),
        name,
        h('label', { for: 'password' }, 'Password'),
        password,
        message,
        h('button', { type: 'submit' }, 'Sign in'),
      ),
      h(
        'p',
        { class: 'muted' },
        'Administrators: run ',
        h('code', {}, 'oriel signin'),
        ' on the server for a one-time link. Users are made with ',
        h('code', {}, 'oriel user add'),
        '.',
      ),
    ),
  );
  name.focus();
}
