/**
 * Logins and users: GET /api/auth/status, POST /api/auth/login and /api/auth/first-run, /api/users.
 * The username and password rules are here so the first-run form checks what the server checks.
 */

export type Role = 'admin' | 'read_only';

/** A user as the API shows it (never a password hash). */
export interface PublicUser {
  username: string;
  role: Role;
}

/** GET /api/auth/status (no login needed). */
export interface AuthStatus {
  /** No user exists yet: the UI asks for the first admin. */
  firstRun: boolean;
  /** Set when the users file cannot be read. */
  authError?: string;
  /** The logged-in user, if the request carries a valid session. */
  user?: PublicUser;
}

/** Reply of login, first-run, add user and role change. */
export interface UserReply {
  user: PublicUser;
}

/** GET /api/users. */
export interface UsersPayload {
  users: PublicUser[];
}

export const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;
