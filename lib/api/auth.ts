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
  /** No user exists yet: the UI asks for the first admin (and the setup token). */
  firstRun: boolean;
  /** During first run: the file on the server that holds the setup token. */
  setupTokenFile?: string;
  /** Set when the users file is unusable (what is wrong and how to fix it). */
  authError?: string;
  /** The logged-in user, if the request carries a valid session. */
  user?: PublicUser;
}

/** POST /api/auth/first-run: the first admin, with the setup token from `setupTokenFile`. */
export interface FirstRunRequest {
  username: string;
  password: string;
  token: string;
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
/** Longest setup token accepted (ours are 43 characters). */
export const SETUP_TOKEN_MAX = 256;
