// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { setupUsers } from '../support/users.ts';
import { withHarness } from './helpers.ts';

function circuitsOf(csv: string, network: string) {
  return validateInputs({ devicesText: csv, devicesFile: 'ShapedDevices.csv', networkText: network, networkFile: 'network.json' }).inputs.circuits;
}

test('shaped-devices GET returns the circuits of the file; PUT of a valid list rewrites it and reads back equal', async () => {
  await withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    const got = await viewer.get('/api/shaped-devices');
    assert.equal(got.status, 200);
    assert.deepEqual(
      got.json.circuits.map((c: any) => [c.id, c.devices.length]),
      [
        ['c1', 1],
        ['c2', 2],
      ],
    );
    assert.equal(got.json.ownedBy, null);

    const circuits = got.json.circuits;
    circuits[0].downloadMaxMbps = 200;
    circuits[0].sqm = { download: 'fq_codel', upload: 'cake' };
    circuits.push({
      id: 'c3',
      name: 'Carol, "the new one"',
      parentNode: 'SiteA',
      downloadMinMbps: 2,
      uploadMinMbps: 1,
      downloadMaxMbps: 25,
      uploadMaxMbps: 5,
      devices: [{ id: 'd9', name: 'Carol CPE', mac: '02:00:00:00:00:09', ipv4: ['100.64.0.9', '100.64.9.0/24'], ipv6: ['2001:db8:9::/48'] }],
    });
    const put = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.circuits, 3);

    const text = readFileSync(h.devicesPath, 'utf8');
    const reread = circuitsOf(text, readFileSync(h.networkPath, 'utf8'));
    const strip = (cs: any[]) =>
      cs.map(({ line: _l, ...c }) => ({ ...c, devices: c.devices.map(({ line: _dl, ...d }: any) => d) }));
    // Equal to what was sent, once the new circuit gets its defaults and canonical prefixes.
    const expected = structuredClone(circuits);
    Object.assign(expected[2], { parentNodeId: '', anchorNodeId: '', comment: '' });
    Object.assign(expected[2].devices[0], { ipv4: ['100.64.0.9/32', '100.64.9.0/24'], comment: '' });
    assert.deepEqual(strip(reread), strip(expected));
    const byId = new Map(reread.map((c) => [c.id, c]));
    assert.equal(byId.get('c1')!.downloadMaxMbps, 200);
    assert.deepEqual(byId.get('c1')!.sqm, { download: 'fq_codel', upload: 'cake' });
    assert.equal(byId.get('c3')!.name, 'Carol, "the new one"');
    assert.deepEqual(byId.get('c3')!.devices[0].ipv4, ['100.64.0.9/32', '100.64.9.0/24']);
    // And the API shows the same thing.
    const again = await admin.get('/api/shaped-devices');
    assert.deepEqual(strip(again.json.circuits), strip(reread as any[]));
  });
});

test('shaped-devices PUT: a duplicate IP gives 422 with the line message and leaves the file alone', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.devicesPath, 'utf8');
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    circuits[1].devices[1].ipv4 = ['100.64.0.1']; // c1's address
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error, 'invalid_inputs');
    assert.match(r.json.message, /nothing was written/);
    const dup = r.json.issues.find((i: any) => i.severity === 'error');
    assert.ok(dup, r.text);
    assert.match(dup.text, /^error: ShapedDevices\.csv:4: column "IPv4" value "100\.64\.0\.1"/);
    assert.match(dup.message, /100\.64\.0\.1/);
    assert.equal(dup.circuitId, 'c2');
    assert.equal(dup.deviceId, 'd3');
    assert.equal(readFileSync(h.devicesPath, 'utf8'), before);

    // Schema violations: 400 before validation.
    assert.equal((await admin.put('/api/shaped-devices', { circuits: [{ id: 'x' }] })).status, 400);
    assert.equal((await admin.put('/api/shaped-devices', { circuits: [], extra: 1 })).status, 400);
    const nl = structuredClone(circuits);
    nl[0].name = 'line\nbreak';
    assert.equal((await admin.put('/api/shaped-devices', { circuits: nl })).status, 400);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), before);
  });
});

test('network PUT: validated together with the current CSV; errors give 422 and write nothing', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const got = await admin.get('/api/network');
    assert.equal(got.status, 200);
    assert.equal(got.json.network.SiteA.children.AP_1.downloadBandwidthMbps, 300);

    const network = got.json.network;
    network.SiteA.children.AP_2 = { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 };
    const ok = await admin.put('/api/network', { network });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.nodes, 3);
    assert.equal(JSON.parse(readFileSync(h.networkPath, 'utf8')).SiteA.children.AP_2.uploadBandwidthMbps, 100);

    const before = readFileSync(h.networkPath, 'utf8');
    const bad = await admin.put('/api/network', { network: { SiteA: { downloadBandwidthMbps: 'lots', uploadBandwidthMbps: 5 } } });
    assert.equal(bad.status, 422, bad.text);
    assert.match(bad.json.issues.find((i: any) => i.severity === 'error').text, /^error: network\.json:/);
    assert.equal(readFileSync(h.networkPath, 'utf8'), before);

    // Removing AP_1 orphans c1/c2: refused until the admin says where they go; nothing written.
    const orphan = await admin.put('/api/network', { network: { SiteB: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100 } } });
    assert.equal(orphan.status, 409, orphan.text);
    assert.equal(orphan.json.error, 'orphaned_circuits');
    assert.match(orphan.json.message, /removes "AP_1", which 2 circuits hang under; nothing was written/);
    assert.deepEqual(orphan.json.orphans, { count: 2, groups: [{ parent: 'AP_1', moveTo: '', circuits: [{ id: 'c1', name: 'Alice' }, { id: 'c2', name: 'Bob' }] }] });
    assert.equal(readFileSync(h.networkPath, 'utf8'), before);
    // "keep": saved as asked, the circuits reported without a parent.
    const kept = await admin.put('/api/network', { network: { SiteB: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100 } }, orphans: 'keep' });
    assert.equal(kept.status, 200, kept.text);
    assert.ok(kept.json.issues.some((i: any) => i.code === 'unknown-parent'));
  });
});

test('network PUT with orphans "reparent": the circuits move to the nearest remaining node above, their rows rewritten in place', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    // The operator's file: a comment, their own column order, CRLF line endings.
    const csv =
      '# customers of AP_1\r\nCircuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\r\n' +
      'c1,Alice,d1,Alice router,AP_1,02:00:00:00:00:01,100.64.0.1,,5,1,100,20,\r\n' +
      '  # Bob has two devices\r\n' +
      'c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,2001:db8::/56,5,1,50,10,"left, at the gate"\r\n' +
      'c2,Bob,d3,Bob phone,AP_1,02:00:00:00:00:03,100.64.0.3,,5,1,50,10,\r\n';
    writeFileSync(h.devicesPath, csv);
    const network = (await admin.get('/api/network')).json.network;
    delete network.SiteA.children.AP_1;
    network.SiteA.children.AP_2 = { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 };
    const r = await admin.put('/api/network', { network, orphans: 'reparent' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.reparented.count, 2);
    assert.equal(r.json.reparented.groups[0].moveTo, 'SiteA');
    assert.equal(r.json.issues.filter((i: any) => i.code === 'unknown-parent').length, 0, 'nobody is left without a parent');
    assert.equal(
      readFileSync(h.devicesPath, 'utf8'),
      csv.replace(/,AP_1,/g, ',SiteA,').replace('# customers of SiteA', '# customers of AP_1'),
      'only the Parent Node cells changed: comments, quoting and CRLF kept',
    );
    const devices = (await admin.get('/api/shaped-devices')).json.circuits;
    assert.deepEqual(devices.map((c: any) => c.parentNode), ['SiteA', 'SiteA']);
  });
});

test('shaped-devices PUT: a circuit whose parent is not in network.json is refused (422), the file untouched', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.devicesPath, 'utf8');
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    circuits[0].parentNode = 'AP_Nowhere';
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 422, r.text);
    assert.match(r.json.message, /ShapedDevices\.csv has 1 error; nothing was written\. First: .*"AP_Nowhere", which is not a node in network\.json/);
    const issue = r.json.issues.find((i: any) => i.code === 'unknown-parent');
    assert.equal(issue.severity, 'error');
    assert.equal(issue.circuitId, 'c1');
    assert.equal(readFileSync(h.devicesPath, 'utf8'), before);
  });
});

test('with an integration enabled, PUT shaped-devices / network answer 409 and change nothing', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    const network = (await admin.get('/api/network')).json.network;
    assert.equal((await admin.put('/api/config', { splynx_integration: { enable_splynx: true } })).status, 200);
    const devicesBefore = readFileSync(h.devicesPath, 'utf8');
    const networkBefore = readFileSync(h.networkPath, 'utf8');

    const r1 = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r1.status, 409);
    assert.equal(r1.json.error, 'integration_owns_inputs');
    assert.match(r1.json.message, /splynx integration is enabled/);
    const r2 = await admin.put('/api/network', { network });
    assert.equal(r2.status, 409);
    assert.equal((await admin.get('/api/shaped-devices')).json.ownedBy, 'splynx_integration');
    assert.equal((await admin.get('/api/status')).json.inputsOwnedBy, 'splynx');
    assert.equal(readFileSync(h.devicesPath, 'utf8'), devicesBefore);
    assert.equal(readFileSync(h.networkPath, 'utf8'), networkBefore);
  });
});

test('circuits, circuit by id and network tree come from the applied plan', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    const list = await viewer.get('/api/circuits');
    assert.equal(list.json.applied, true);
    assert.equal(list.json.circuits.length, 2);
    const c2 = await viewer.get('/api/circuits/c2');
    assert.equal(c2.status, 200);
    assert.equal(c2.json.name, 'Bob');
    assert.deepEqual(c2.json.ipv4, ['100.64.0.2/32', '100.64.0.3/32']);
    assert.deepEqual(c2.json.ipv6, ['2001:db8::/56']);
    assert.match(c2.json.classId.download, /^[0-9a-f]+:[0-9a-f]+$/);
    assert.equal(c2.json.download.ceilMbps, 50);
    assert.equal(c2.json.parent, 'SiteA/AP_1');
    assert.equal((await viewer.get('/api/circuits/nope')).status, 404);

    const tree = await viewer.get('/api/network-tree');
    const ap = tree.json.nodes.find((n: any) => n.name === 'AP_1');
    assert.equal(ap.parent, 'SiteA');
    assert.equal(ap.download.ceilMbps, 300);
    assert.equal(ap.circuits, 2);
  });
});

test('GET shaped-devices reports the issues of a broken file instead of failing', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    writeFileSync(h.devicesPath, readFileSync(h.devicesPath, 'utf8') + 'c9,Bad,d9,x,AP_1,,999.1.1.1,,1,1,10,10,\n');
    const r = await viewer.get('/api/shaped-devices');
    assert.equal(r.status, 200);
    assert.ok(r.json.issues.some((i: any) => i.severity === 'error' && i.line === 5));
  });
});

test('shaped-devices PUT keeps the operator\'s file layout: comments, 13 columns, untouched rows byte for byte', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const csv =
      '# exported from billing, fixed by hand\r\n' +
      'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\r\n' +
      'c1,Alice,d1,Alice router,AP_1,02:00:00:00:00:01,100.64.0.1/32,,5,1,100.0,20,"quoted, kept"\r\n' +
      '\r\n' +
      'c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,2001:db8::/56,5,1,50,10,\r\n' +
      'c2,Bob,d3,Bob phone,AP_1,02:00:00:00:00:03,100.64.0.3,,5,1,50,10,\r\n';
    writeFileSync(h.devicesPath, csv);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    circuits[1].downloadMaxMbps = 80; // Bob: both rows change that cell
    circuits[1].devices = circuits[1].devices.filter((d: any) => d.id !== 'd3'); // phone removed
    circuits.push({ ...structuredClone(circuits[0]), id: 'c9', name: 'Carol', devices: [{ id: 'd9', name: 'Carol cpe', mac: '', ipv4: ['100.64.0.9'], ipv6: [], comment: '' }] });
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 200, r.text);
    assert.equal(
      readFileSync(h.devicesPath, 'utf8'),
      '# exported from billing, fixed by hand\r\n' +
        'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\r\n' +
        'c1,Alice,d1,Alice router,AP_1,02:00:00:00:00:01,100.64.0.1/32,,5,1,100.0,20,"quoted, kept"\r\n' +
        '\r\n' +
        'c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,2001:db8::/56,5,1,80,10,\r\n' +
        'c9,Carol,d9,Carol cpe,AP_1,,100.64.0.9,,5,1,100,20,"quoted, kept"\r\n',
    );
    // A value for a column the file does not have (sqm): the file is written whole, with every column.
    const again = (await admin.get('/api/shaped-devices')).json.circuits;
    again[0].sqm = { download: 'fq_codel', upload: 'fq_codel' };
    assert.equal((await admin.put('/api/shaped-devices', { circuits: again })).status, 200);
    const whole = readFileSync(h.devicesPath, 'utf8');
    assert.match(whole.split('\n')[0]!, /,Comment,sqm$/);
  });
});

/** An operator's file with a quoted name after a blank (read as one cell) and one comment in a two-device circuit. */
const SPACED_CSV =
  '# hand-edited\n' +
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n' +
  'c1, "Doe, Jane", d1, Jane router, AP_1, , 100.64.0.1, , 5, 1, 100, 20, \n' +
  'c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,,5,1,50,10,installed 2023\n' +
  'c2,Bob,d3,Bob phone,AP_1,02:00:00:00:00:03,100.64.0.3,,5,1,50,10,\n';

test('shaped-devices PUT: a quoted cell after a blank keeps later edits in their column; the other rows (and their comments) stay byte for byte', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    writeFileSync(h.devicesPath, SPACED_CSV);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    assert.equal(circuits[0].name, 'Doe, Jane');
    circuits[0].devices[0].ipv4 = ['100.64.0.9'];
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), SPACED_CSV.replace(', 100.64.0.1,', ', 100.64.0.9,'));
    assert.equal(r.json.issues.filter((i: any) => i.code === 'layout-not-kept').length, 0);

    // Not possible in the file's own layout (it has no sqm column): written whole, and the reply says why.
    const again = (await admin.get('/api/shaped-devices')).json.circuits;
    again[1].sqm = { download: 'cake', upload: 'cake' };
    const whole = await admin.put('/api/shaped-devices', { circuits: again });
    assert.equal(whole.status, 200, whole.text);
    const note = whole.json.issues.find((i: any) => i.code === 'layout-not-kept');
    assert.equal(note?.severity, 'warning');
    assert.match(note.message, /written whole .* "sqm" column/);
    assert.match(readFileSync(h.devicesPath, 'utf8').split('\n')[0]!, /,Comment,sqm$/);
  });
});

test('shaped-devices PUT over a file with a line the editor cannot read (a missing cell): refused, nothing written, the line named', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const text = `${SPACED_CSV}# site list\nc3,Carol,d4,Carol router,AP_1,,100.64.0.4,,5,1,50,10\n`;
    writeFileSync(h.devicesPath, text);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    assert.ok(!circuits.some((c: any) => c.id === 'c3'), 'the short row does not read');
    circuits[0].devices[0].ipv4 = ['100.64.0.9'];
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 422, r.text);
    assert.match(r.json.message, /ShapedDevices\.csv has 1 line the editor cannot read \(first: .*:7.*\); saving would drop it, so nothing was written/);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), text, 'the file is as it was (before: rewritten whole, the row c3 and the comments gone)');
  });
});

test('shaped-devices PUT keeps the file\'s encoding: a Windows-1252 export and a UTF-8 BOM stay so; a character the export cannot hold makes it UTF-8, said in the reply', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const header = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';
    const text = `${header}c1,Alice,d1,Alice router,AP_1,,100.64.0.1,,5,1,100,20,\nc2,Café Bob,d2,Bob router,AP_1,,100.64.0.2,,5,1,50,10,naïve\n`;
    const cp1252 = Buffer.from(text, 'latin1'); // é and ï are the same bytes in Latin-1 and Windows-1252
    const edit = async (name?: string) => {
      const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
      circuits[0].downloadMaxMbps = 90;
      if (name) circuits[0].name = name;
      const r = await admin.put('/api/shaped-devices', { circuits });
      assert.equal(r.status, 200, r.text);
      return r.json.issues as any[];
    };
    writeFileSync(h.devicesPath, cp1252);
    await edit();
    assert.deepEqual(readFileSync(h.devicesPath), Buffer.from(text.replace(',5,1,100,20,', ',5,1,90,20,'), 'latin1'), 'still Windows-1252, only the edited cell changed');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
    writeFileSync(h.devicesPath, bom);
    await edit();
    assert.deepEqual(readFileSync(h.devicesPath), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text.replace(',5,1,100,20,', ',5,1,90,20,'), 'utf8')]), 'the BOM kept');
    writeFileSync(h.devicesPath, cp1252);
    const issues = await edit('Łódź');
    assert.equal(readFileSync(h.devicesPath, 'utf8'), text.replace('c1,Alice,', 'c1,Łódź,').replace(',5,1,100,20,', ',5,1,90,20,'));
    assert.ok(issues.some((i) => i.code === 'input-encoding' && /was windows-1252; a new value has a character windows-1252 cannot hold, so the file was written as UTF-8/.test(i.message)), JSON.stringify(issues));
  });
});

test('shaped-devices PUT: a circuit whose rows disagree (two spellings of its name, two rates) keeps them when another circuit is edited', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const text =
      'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n' +
      'c1,Alice,d1,Alice router,AP_1,,100.64.0.1,,5,1,100,20,\n' +
      'c1,Alice Smith,d1b,Alice phone,AP_1,,100.64.0.5,,5,1,90,20,\n' +
      'c2,Bob,d2,Bob router,AP_1,,100.64.0.2,,5,1,50,10,\n';
    writeFileSync(h.devicesPath, text);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    circuits.find((c: any) => c.id === 'c2').downloadMaxMbps = 60;
    const r = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), text.replace('c2,Bob,d2,Bob router,AP_1,,100.64.0.2,,5,1,50,10,', 'c2,Bob,d2,Bob router,AP_1,,100.64.0.2,,5,1,60,10,'), 'only c2 changed; both c1 rows as they were');
  });
});

test('network PUT changing rates keeps the operator\'s network.json as written (indentation, CRLF, BOM, 1000.0); adding a node adds it in place', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const text = '\uFEFF{\r\n    "SiteA": {\r\n        "downloadBandwidthMbps": 1000.0,\r\n        "uploadBandwidthMbps": 500,\r\n        "children": {\r\n            "AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 }\r\n        }\r\n    }\r\n}\r\n';
    writeFileSync(h.networkPath, text);
    const network = (await admin.get('/api/network')).json.network;
    network.SiteA.children.AP_1.downloadBandwidthMbps = 320;
    const r = await admin.put('/api/network', { network });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(h.networkPath, 'utf8'), text.replace('"AP_1": { "downloadBandwidthMbps": 300,', '"AP_1": { "downloadBandwidthMbps": 320,'));
    network.SiteA.children.AP_1.downloadBandwidthMbps = 320;
    network.SiteA.children.AP_2 = { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 };
    const added = await admin.put('/api/network', { network });
    assert.equal(added.status, 200, added.text);
    // Added in place: after its sibling, in the file's indentation and line endings; the BOM and 1000.0 stay.
    const ap1 = '"AP_1": { "downloadBandwidthMbps": 320, "uploadBandwidthMbps": 150 }';
    assert.equal(
      readFileSync(h.networkPath, 'utf8'),
      text.replace('"AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 }', `${ap1},\r\n            "AP_2": {\r\n                "downloadBandwidthMbps": 100,\r\n                "uploadBandwidthMbps": 50\r\n            }`),
    );
    assert.deepEqual(JSON.parse(readFileSync(h.networkPath, 'utf8').replace(/^\uFEFF/, '')), network);
  });
});

test('network PUT with orphans "reparent": a quoted cell after a blank does not shift the Parent Node column', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    writeFileSync(h.devicesPath, SPACED_CSV);
    const network = (await admin.get('/api/network')).json.network;
    delete network.SiteA.children.AP_1;
    const r = await admin.put('/api/network', { network, orphans: 'reparent' });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), SPACED_CSV.replace(/([ ,])AP_1,/g, '$1SiteA,'));
    const devices = (await admin.get('/api/shaped-devices')).json.circuits;
    assert.deepEqual(
      devices.map((c: any) => [c.name, c.parentNode, c.devices[0].name]),
      [
        ['Doe, Jane', 'SiteA', 'Jane router'],
        ['Bob', 'SiteA', 'Bob router'],
      ],
    );
  });
});

test('network PUT with orphans "reparent": a row that cannot be edited in place refuses the save (422), nothing written', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    // Bob's name spans two lines: his row cannot be changed in place.
    const csv = SPACED_CSV.replace('c2,Bob,d2,', 'c2,"Bob\nBobson",d2,').replace('c2,Bob,d3,', 'c2,"Bob\nBobson",d3,');
    writeFileSync(h.devicesPath, csv);
    const networkBefore = readFileSync(h.networkPath, 'utf8');
    const network = (await admin.get('/api/network')).json.network;
    delete network.SiteA.children.AP_1;
    const r = await admin.put('/api/network', { network, orphans: 'reparent' });
    assert.equal(r.status, 422, r.text);
    assert.match(r.json.message ?? r.text, /cannot be moved in ShapedDevices\.csv/);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), csv);
    assert.equal(readFileSync(h.networkPath, 'utf8'), networkBefore);
  });
});
