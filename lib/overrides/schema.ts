/**
 * `lqos_overrides.json` (in `lqos_directory`): operator changes layered on top of the inputs
 * (ShapedDevices.csv + network.json) before every shaping run, so that an integration rewriting the
 * inputs does not undo them. Shape follows upstream's operator layer (spec §4.2):
 *
 *   {
 *     "persistent_devices":  [ShapedDevice, …]          // upserted by device_id ("devices_to_append" accepted)
 *     "circuit_adjustments": [{type: circuit_adjust_speed | device_adjust_speed | device_adjust_sqm |
 *                              remove_circuit | remove_device | reparent_circuit, …}, …]
 *     "network_adjustments": [{type: adjust_site_speed | set_node_virtual | topology_parent_override, …}, …]
 *     "rtt_excluded_circuits": [circuit id, …]          // accepted, not used by shaping
 *     "uisp": null | {…}                                // deprecated upstream, accepted and ignored
 *   }
 *
 * Unknown keys are rejected (a typo would otherwise silently do nothing).
 */
import { z } from 'zod';

/**
 * The schemas, built on first use: zod's schema construction is a noticeable part of a command's
 * start, and a run without lqos_overrides.json never needs them.
 */
function buildSchemas() {
  /** A rate in Mbps: a positive number. */
  const rate = z.number().finite().positive();
  /** An adjustment rate: absent or null = leave unchanged. */
  const optRate = rate.nullish();
  const id = z.string().trim().min(1);

  /** One `[address, prefix]` pair (upstream's storage) or a plain `"a.b.c.d/nn"` string. */
  const ipEntry = z.union([
    z.tuple([z.string().trim().min(1), z.int().min(0).max(128)]),
    z.string().trim().min(1),
  ]);

  const SQM_TOKEN = /^(cake|fq_codel|none)?(\/(cake|fq_codel|none)?)?$/;
  const sqmToken = z.string().trim().refine((s) => SQM_TOKEN.test(s), {
    error: (iss) => `expected an SQM token: cake, fq_codel, none or down/up such as cake/fq_codel; got ${JSON.stringify(iss.input)}`,
  });

  const persistentDeviceSchema = z.strictObject({
    circuit_id: id,
    circuit_name: z.string(),
    device_id: id,
    device_name: z.string(),
    parent_node: z.string(),
    parent_node_id: z.string().nullish(),
    anchor_node_id: z.string().nullish(),
    mac: z.string(),
    ipv4: z.array(ipEntry),
    ipv6: z.array(ipEntry),
    download_min_mbps: rate,
    upload_min_mbps: rate,
    download_max_mbps: rate,
    upload_max_mbps: rate,
    comment: z.string(),
    sqm_override: sqmToken.nullish(),
  });

  const speedFields = {
    min_download_bandwidth: optRate,
    max_download_bandwidth: optRate,
    min_upload_bandwidth: optRate,
    max_upload_bandwidth: optRate,
  };

  const circuitAdjustmentSchema = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('circuit_adjust_speed'), circuit_id: id, ...speedFields }),
    z.strictObject({ type: z.literal('device_adjust_speed'), device_id: id, ...speedFields }),
    z.strictObject({ type: z.literal('device_adjust_sqm'), device_id: id, sqm_override: sqmToken.nullish() }),
    z.strictObject({ type: z.literal('remove_circuit'), circuit_id: id }),
    z.strictObject({ type: z.literal('remove_device'), device_id: id }),
    z.strictObject({ type: z.literal('reparent_circuit'), circuit_id: id, parent_node: id }),
  ]);

  const networkAdjustmentSchema = z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('adjust_site_speed'),
      node_id: z.string().trim().min(1).nullish(),
      site_name: z.string(),
      download_bandwidth_mbps: optRate,
      upload_bandwidth_mbps: optRate,
    }),
    z.strictObject({ type: z.literal('set_node_virtual'), node_name: id, virtual: z.boolean() }),
    // Upstream: display/legacy only; accepted so real files load, not applied.
    z.strictObject({
      type: z.literal('topology_parent_override'),
      node_id: z.string(),
      node_name: z.string(),
      mode: z.enum(['pinned', 'preferred_order']),
      parent_node_ids: z.array(z.string()),
      parent_node_names: z.array(z.string()),
    }),
  ]);

  const overridesSchema = z
    .strictObject({
      persistent_devices: z.array(persistentDeviceSchema).default([]),
      devices_to_append: z.array(persistentDeviceSchema).optional(),
      circuit_adjustments: z.array(circuitAdjustmentSchema).default([]),
      network_adjustments: z.array(networkAdjustmentSchema).default([]),
      rtt_excluded_circuits: z.array(z.string()).default([]),
      uisp: z.unknown().optional(),
    })
    .transform(({ devices_to_append, ...o }) => ({
      ...o,
      persistent_devices: [...o.persistent_devices, ...(devices_to_append ?? [])],
    }));
  return { persistentDeviceSchema, circuitAdjustmentSchema, networkAdjustmentSchema, overridesSchema };
}

type Schemas = ReturnType<typeof buildSchemas>;
let built: Schemas | undefined;

/** The lqos_overrides.json schemas (built once, on the first call). */
export function overridesSchemas(): Schemas {
  return (built ??= buildSchemas());
}

export type PersistentDevice = z.infer<Schemas['persistentDeviceSchema']>;
export type CircuitAdjustment = z.infer<Schemas['circuitAdjustmentSchema']>;
export type NetworkAdjustment = z.infer<Schemas['networkAdjustmentSchema']>;
export type Overrides = z.infer<Schemas['overridesSchema']>;

/** True when applying `o` can change the inputs (ignored entry kinds do not count). */
export function hasEffect(o: Overrides): boolean {
  return (
    o.persistent_devices.length > 0 ||
    o.circuit_adjustments.length > 0 ||
    o.network_adjustments.some((a) => a.type !== 'topology_parent_override')
  );
}
