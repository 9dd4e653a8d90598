import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { setUnauthorizedHandler } from './lib/api';
import { live } from './lib/live';
import { router } from './router';
import { useAuth } from './stores/auth';
import { useInventory } from './stores/inventory';
import { useLive } from './stores/live';
import './style.css';

const app = createApp(App);
const pinia = createPinia();
app.use(pinia);
app.use(router);

/** The session ended (expired, logged out elsewhere, user removed): back to the login page. */
function sessionEnded(): void {
  const auth = useAuth(pinia);
  if (!auth.user) return;
  auth.user = undefined;
  useLive(pinia).stop();
  useInventory(pinia).reset();
  const here = router.currentRoute.value;
  if (!here.meta.public) void router.push({ name: 'login', query: { next: here.fullPath, ended: '1' } });
}
setUnauthorizedHandler(sessionEnded);
live.onSessionEnded = sessionEnded;

app.mount('#app');
