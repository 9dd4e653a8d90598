import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { AuthStatus, FirstRunRequest, PublicUser, UserReply } from '../../../lib/api/index.ts';
import { get, post } from '../lib/api';

export const useAuth = defineStore('auth', () => {
  const loaded = ref(false);
  const firstRun = ref(false);
  /** During first run: where the server keeps the setup token. */
  const setupTokenFile = ref<string | undefined>();
  const authError = ref<string | undefined>();
  const user = ref<PublicUser | undefined>();
  const isAdmin = computed(() => user.value?.role === 'admin');
  /** Editing controls are rendered only for admins (read-only users never see them). */
  const canEdit = isAdmin;

  async function refresh(): Promise<void> {
    const s = await get<AuthStatus>('/api/auth/status');
    firstRun.value = s.firstRun;
    setupTokenFile.value = s.setupTokenFile;
    authError.value = s.authError;
    user.value = s.user;
    loaded.value = true;
  }

  async function login(username: string, password: string): Promise<void> {
    const r = await post<UserReply>('/api/auth/login', { username, password });
    user.value = r.user;
    firstRun.value = false;
  }

  async function createFirstAdmin(req: FirstRunRequest): Promise<void> {
    const r = await post<UserReply>('/api/auth/first-run', req);
    user.value = r.user;
    firstRun.value = false;
  }

  async function logout(): Promise<void> {
    try {
      await post('/api/auth/logout');
    } finally {
      user.value = undefined;
    }
  }

  return { loaded, firstRun, setupTokenFile, authError, user, isAdmin, canEdit, refresh, login, createFirstAdmin, logout };
});
