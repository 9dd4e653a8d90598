import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { CONFIG_SECTIONS } from './lib/configFields';
import { useAuth } from './stores/auth';

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without login (login, first run). */
    public?: boolean;
    /** Admin role only. */
    admin?: boolean;
    title?: string;
  }
}

// One chunk per page: the dashboard does not pay for the editors (and vice versa).
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./pages/LoginPage.vue'), meta: { public: true, title: 'Log in' } },
  { path: '/first-run', name: 'first-run', component: () => import('./pages/FirstRunPage.vue'), meta: { public: true, title: 'First run' } },
  { path: '/', name: 'dashboard', component: () => import('./pages/DashboardPage.vue'), meta: { title: 'Dashboard' } },
  { path: '/tree', name: 'tree', component: () => import('./pages/TreePage.vue'), meta: { title: 'Network Tree' } },
  { path: '/circuit/:id', name: 'circuit', component: () => import('./pages/CircuitPage.vue'), props: true, meta: { title: 'Circuit' } },
  { path: '/network', name: 'network-editor', component: () => import('./pages/NetworkEditorPage.vue'), meta: { title: 'Network Layout' } },
  { path: '/shaped-devices', name: 'shaped-devices', component: () => import('./pages/ShapedDevicesPage.vue'), meta: { title: 'Shaped Devices' } },
  { path: '/config', redirect: '/config/general' },
  {
    path: `/config/:section(${Object.keys(CONFIG_SECTIONS).join('|')})`,
    name: 'config',
    component: () => import('./pages/ConfigPage.vue'),
    props: true,
    meta: { title: 'Configuration' },
  },
  {
    path: '/config/integrations/:integration(common|uisp|splynx|visp|netzur|powercode|sonar|wispgate)',
    name: 'integration-config',
    component: () => import('./pages/IntegrationConfigPage.vue'),
    props: true,
    meta: { title: 'Integration configuration' },
  },
  { path: '/site-map', name: 'site-map', component: () => import('./pages/SiteMapPage.vue'), meta: { title: 'Site Map' } },
  { path: '/flow-globe', name: 'flow-globe', component: () => import('./pages/FlowGlobePage.vue'), meta: { title: 'Flow Globe' } },
  { path: '/asn-analysis', name: 'asn-analysis', component: () => import('./pages/AsnAnalysisPage.vue'), meta: { title: 'ASN Analysis' } },
  { path: '/executive', name: 'executive', component: () => import('./pages/ExecutivePage.vue'), meta: { title: 'Executive summary' } },
  { path: '/history', name: 'history', component: () => import('./pages/HistoryPage.vue'), meta: { title: 'History' } },
  { path: '/cpu-tree', name: 'cpu-tree', component: () => import('./pages/CpuTreePage.vue'), meta: { title: 'CPU Tree' } },
  { path: '/unknown-ips', name: 'unknown-ips', component: () => import('./pages/UnknownIpsPage.vue'), meta: { title: 'Unknown IPs' } },
  { path: '/cpu-weights', name: 'cpu-weights', component: () => import('./pages/CpuWeightsPage.vue'), meta: { title: 'CPU Weights' } },
  { path: '/users', name: 'users', component: () => import('./pages/UsersPage.vue'), meta: { admin: true, title: 'Users' } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue'), meta: { title: 'Not found' } },
];

export const router = createRouter({ history: createWebHistory('/'), routes });

router.beforeEach(async (to) => {
  const auth = useAuth();
  if (!auth.loaded) {
    try {
      await auth.refresh();
    } catch {
      // lqosd unreachable: the login page says so
      if (!to.meta.public) return { name: 'login' };
      return true;
    }
  }
  if (auth.firstRun) return to.name === 'first-run' ? true : { name: 'first-run' };
  if (to.name === 'first-run') return { name: auth.user ? 'dashboard' : 'login' };
  if (!auth.user) return to.meta.public ? true : { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} };
  if (to.meta.public) return { name: 'dashboard' };
  if (to.meta.admin && !auth.isAdmin) return { name: 'dashboard' };
  return true;
});

/** The window title: the page and this node's `node_name` (App.vue keeps it current once the status loads). */
export function pageTitle(page: unknown, nodeName?: string): string {
  const node = nodeName?.trim() || 'LibreQoS';
  const suffix = node === 'LibreQoS' ? 'LibreQoS' : `${node} · LibreQoS`;
  return page ? `${String(page)} · ${suffix}` : suffix;
}

