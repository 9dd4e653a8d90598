import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUsersFile } from '../../lib/web/users.ts';

test('users file: upstream role spellings; anything but admin is read-only; malformed files throw', () => {
  const users = parseUsersFile(`version = 2
auth_epoch = 7
[[users]]
username = "boss"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
role = "Admin"
[[users]]
username = "looker"
password_hash = "x"
role = "ReadOnly"
[[users]]
username = "odd"
password_hash = "x"
role = "superuser"
`);
  assert.deepEqual(
    users.map((u) => [u.username, u.role]),
    [
      ['boss', 'admin'],
      ['looker', 'read_only'],
      ['odd', 'read_only'],
    ],
  );
  assert.deepEqual(parseUsersFile(''), []);
  assert.throws(() => parseUsersFile('users = 3'));
  assert.throws(() => parseUsersFile('[[users]]\nusername = "a"\n'));
  assert.throws(() => parseUsersFile('[[users]]\nusername = "a"\npassword_hash = "x"\n[[users]]\nusername = "a"\npassword_hash = "y"\n'));
});
