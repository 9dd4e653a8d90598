/** The tests' logger: silent unless LQOS_TEST_LOG is set. */
import { createLogger } from '../../lib/util/log.ts';

export const quiet = createLogger('test', process.env.LQOS_TEST_LOG ? 'debug' : 'silent');
