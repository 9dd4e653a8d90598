export { clientRate } from '../../lib/integrations/common/rates.ts';
export { enabledIntegrations as enabledIntegrationsFromConfig } from '../../lib/integrations/registry.ts';
