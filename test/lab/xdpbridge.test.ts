/**
 * The XDP-bridge lab (`npm run lab -- --mode xdp-bridge`): the shaper's two ports are not in a Linux
 * bridge (`[bridge] use_xdp_bridge = true`); our tc-ingress redirect is the only thing that forwards.
 * Shaping, unshaped traffic, live changes, restart and --clearrules as for every forwarding mode.
 * Runs as root; builds and removes its own namespaces (lqxbr-*).
 */
import { forwardingModeSuite } from './forwardingSuite.ts';

forwardingModeSuite('xdp-bridge', 'lqxbr');
