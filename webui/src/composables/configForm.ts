/**
 * One configuration editor page: the config (GET /api/config), the key descriptions the fields are
 * built from (GET /api/config/schema, loaded once), the values and new secrets being typed, and
 * saving the changes (PUT /api/config). components/ConfigForm.vue shows it.
 */
import { computed, reactive, ref, shallowRef, watch } from 'vue';
import { onBeforeRouteLeave } from 'vue-router';
import type { ConfigPayload, ConfigSaved, ConfigSchemaPayload } from '../../../lib/api/index.ts';
import { ApiError, errorText, get, put } from '../lib/api';
import type { ConfigSchema, Field } from '../lib/configFields';
import { fromConfig, patchOf, problemsOf } from '../lib/configForm';
import { useAuth } from '../stores/auth';

type Config = Record<string, unknown>;

let schemaLoad: Promise<ConfigSchema> | undefined;

function loadSchema(): Promise<ConfigSchema> {
  schemaLoad ??= get<ConfigSchemaPayload>('/api/config/schema')
    .then((r) => new Map(r.keys.map((k) => [k.key, k])))
    .catch((err: unknown) => {
      schemaLoad = undefined;
      throw err;
    });
  return schemaLoad;
}

export interface ConfigFormOptions {
  /** The page shown (a section, an integration); when it changes the form starts over. */
  page: () => unknown;
  /** Every field on the page (values are kept for all, e.g. both interface modes). */
  fields: (schema: ConfigSchema) => Field[];
  /** The fields that are saved; default all. */
  saved?: (schema: ConfigSchema) => Field[];
  /** A section the saved one replaces: it is removed and every saved value is sent. */
  replaces?: () => string | undefined;
  /** After the values were (re)filled from the config. */
  onReset?: (config: Config) => void;
}

export function useConfigForm(opts: ConfigFormOptions) {
  const auth = useAuth();
  const config = ref<Config>();
  const schema = shallowRef<ConfigSchema>();
  const path = ref('');
  const values = ref<Record<string, unknown>>({});
  const secrets = ref<Record<string, string | undefined>>({});
  const error = ref('');
  const details = ref<string[]>([]);
  const notice = ref('');
  /** Keys the last save changed that wait for an lqosd restart. */
  const restartRequired = ref<string[]>([]);
  const saving = ref(false);

  const fields = computed(() => (schema.value ? opts.fields(schema.value) : []));
  const saved = computed(() => (schema.value && opts.saved ? opts.saved(schema.value) : fields.value));
  const problems = computed(() => problemsOf(saved.value, values.value));
  const patch = computed<Config>(() => {
    if (!config.value) return {};
    const replaced = opts.replaces?.();
    const out = patchOf(saved.value, values.value, secrets.value, config.value, replaced !== undefined);
    if (replaced !== undefined) out[replaced] = null;
    return out;
  });
  // input that cannot be sent (broken JSON, a blank number) counts as a change too: Save then explains
  const dirty = computed(() => Object.keys(patch.value).length > 0 || problems.value.length > 0);

  function reset(): void {
    const c = config.value;
    if (!c) return;
    values.value = Object.fromEntries(fields.value.map((f) => [f.key, fromConfig(f, c)]));
    secrets.value = {};
    opts.onReset?.(c);
  }

  async function load(): Promise<void> {
    error.value = '';
    try {
      const [r, s] = await Promise.all([get<ConfigPayload>('/api/config'), loadSchema()]);
      schema.value = s;
      config.value = r.config;
      path.value = r.path;
      reset();
    } catch (err) {
      error.value = errorText(err);
    }
  }

  async function save(): Promise<void> {
    error.value = '';
    details.value = [];
    notice.value = '';
    restartRequired.value = [];
    if (problems.value.length > 0) {
      error.value = 'Fix these values first:';
      details.value = problems.value;
      return;
    }
    saving.value = true;
    try {
      const r = await put<ConfigSaved>('/api/config', patch.value);
      config.value = r.config;
      reset();
      notice.value = `Saved to ${path.value}.${r.warnings.length ? ` Warnings: ${r.warnings.join('; ')}` : ''}`;
      restartRequired.value = r.restartRequired;
    } catch (err) {
      error.value = errorText(err);
      if (err instanceof ApiError && Array.isArray(err.body.details)) details.value = err.body.details as string[];
    } finally {
      saving.value = false;
    }
  }

  watch(
    opts.page,
    () => {
      notice.value = '';
      restartRequired.value = [];
      details.value = [];
      error.value = '';
      if (config.value) reset();
      else void load();
    },
    { immediate: true },
  );
  onBeforeRouteLeave(() => (dirty.value && auth.canEdit ? confirm('Discard unsaved configuration changes?') : true));

  return reactive({ config, schema, values, secrets, error, details, notice, restartRequired, saving, dirty, reset, save });
}

export type ConfigForm = ReturnType<typeof useConfigForm>;
