/** Light / dark theme, stored in localStorage `theme` (as upstream); index.html applies it before paint. */
import { ref, watch } from 'vue';

export type Theme = 'light' | 'dark';

function initial(): Theme {
  try {
    return localStorage.getItem('theme') === 'light' ? 'light' : 'dark';
  } catch {
    return 'dark';
  }
}

const theme = ref<Theme>(initial());
document.documentElement.dataset.theme = theme.value;
watch(theme, (t) => {
  document.documentElement.dataset.theme = t;
  try {
    localStorage.setItem('theme', t);
  } catch {
    // ignore
  }
});

export function useTheme() {
  return {
    theme,
    toggle: () => {
      theme.value = theme.value === 'dark' ? 'light' : 'dark';
    },
  };
}
