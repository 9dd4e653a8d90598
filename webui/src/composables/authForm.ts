/**
 * The submit of the login and first-run forms: busy while the request runs, then on to `next`; an
 * error whose code means "the other page" (first run / already configured) goes there instead.
 */
import { ref } from 'vue';
import { useRouter, type RouteLocationRaw } from 'vue-router';
import { ApiError, errorText } from '../lib/api';

export interface Detour {
  /** The API error code. */
  code: string;
  /** Runs before going there (e.g. updating the auth store). */
  before: () => void;
  to: RouteLocationRaw;
}

export function useAuthForm(initialError = '') {
  const router = useRouter();
  const error = ref(initialError);
  /** The last failure as thrown (pages read details such as a wait from it). */
  const failure = ref<unknown>();
  const busy = ref(false);

  async function submit(problem: string, action: () => Promise<void>, next: () => RouteLocationRaw, detour: Detour): Promise<void> {
    error.value = problem;
    failure.value = undefined;
    if (problem) return;
    busy.value = true;
    try {
      await action();
      await router.replace(next());
    } catch (err) {
      if (err instanceof ApiError && err.code === detour.code) {
        detour.before();
        await router.replace(detour.to);
        return;
      }
      error.value = errorText(err);
      failure.value = err;
    } finally {
      busy.value = false;
    }
  }

  return { error, failure, busy, submit };
}
