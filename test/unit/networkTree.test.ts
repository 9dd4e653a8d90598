// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The Network Layout editor's model (webui/src/lib/networkTree*.ts): every tree edit on the
 * network.json object, compared as exact JSON text (key order included), the checks shown while
 * typing, and the circuit counts / pending orphans shown before a save.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addChild,
  ancestorKeys,
  deleteNode,
  fieldText,
  movedKeys,
  moveNode,
  moveTargets,
  nameProblem,
  type NetworkObject,
  networkText,
  parseNetworkText,
  pathKey,
  renameNode,
  sameFieldValue,
  setField,
  TreeEditError,
  visibleRows,
} from '../../webui/src/lib/networkTree.ts';
import { checkNetwork } from '../../webui/src/lib/networkTreeCheck.ts';
import { circuitCounts, pendingOrphans, recordRename } from '../../webui/src/lib/networkTreeCircuits.ts';

/** A tree with unknown keys (kept by every edit) and a `name` that repeats a key. */
function sample(): NetworkObject {
  return {
    Downtown: {
      downloadBandwidthMbps: 1000,
      uploadBandwidthMbps: 500,
      type: 'site',
      crm: { ref: 7 },
      children: {
        Tower_North: { downloadBandwidthMbps: 400, uploadBandwidthMbps: 200, type: 'site', latitude: 39.86, lon: -89.64, children: { AP_N1: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50, type: 'ap' } } },
        Tower_South: { downloadBandwidthMbps: 600, uploadBandwidthMbps: 300, type: 'site', name: 'Tower_South', note: 'keep me' },
      },
    },
    Riverside: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 250, type: 'site', id: 'uisp:7' },
  };
}
const text = (n: NetworkObject) => JSON.stringify(n);

test('addChild: appended under its parent with the parent rates; the input is not changed; a used name is refused', () => {
  const net = sample();
  const before = text(net);
  const out = addChild(net, ['Downtown', 'Tower_North'], 'AP_N2');
  assert.equal(text(net), before, 'the input object was changed');
  assert.deepEqual(Object.keys((out.Downtown as any).children.Tower_North.children), ['AP_N1', 'AP_N2']);
  assert.equal(text((out.Downtown as any).children.Tower_North.children.AP_N2), '{"downloadBandwidthMbps":400,"uploadBandwidthMbps":200,"type":"site"}');
  const top = addChild(net, [], 'Hilltop');
  assert.deepEqual(Object.keys(top), ['Downtown', 'Riverside', 'Hilltop']);
  assert.equal(text(top.Hilltop as NetworkObject), '{"type":"site"}');
  // A node without `children` gets them.
  const leaf = addChild(net, ['Riverside'], 'AP_R1', { type: 'ap' });
  assert.equal(text(leaf.Riverside as NetworkObject), '{"downloadBandwidthMbps":500,"uploadBandwidthMbps":250,"type":"site","id":"uisp:7","children":{"AP_R1":{"type":"ap"}}}');
  assert.throws(() => addChild(net, [], 'AP_N1'), /"AP_N1" is already used by node "AP_N1" \(under "Tower_North"\)/);
  assert.throws(() => addChild(net, [], 'uisp:7'), /already used by node "Riverside"/, 'an id is a name too');
  assert.throws(() => addChild(net, [], ' '), /needs a name/);
  assert.throws(() => addChild(net, ['Nowhere'], 'X'), TreeEditError);
});

test('renameNode: same position among siblings, children and unknown keys kept, a `name` repeating the key follows it', () => {
  const net = sample();
  const out = renameNode(net, ['Downtown'], 'Centre');
  assert.equal(
    text(out),
    text(sample()).replace('{"Downtown":', '{"Centre":'),
    'only the key changed',
  );
  assert.deepEqual(Object.keys(out), ['Centre', 'Riverside']);
  const south = renameNode(net, ['Downtown', 'Tower_South'], 'Tower_S');
  assert.deepEqual(Object.keys((south.Downtown as any).children), ['Tower_North', 'Tower_S']);
  assert.equal(text((south.Downtown as any).children.Tower_S), '{"downloadBandwidthMbps":600,"uploadBandwidthMbps":300,"type":"site","name":"Tower_S","note":"keep me"}');
  const mid = renameNode(net, ['Downtown', 'Tower_North'], 'TN');
  assert.equal(text((mid.Downtown as any).children.TN.children), text((sample().Downtown as any).children.Tower_North.children));
  assert.equal(renameNode(net, ['Riverside'], 'Riverside'), net, 'same name: no change');
  assert.throws(() => renameNode(net, ['Riverside'], 'Tower_South'), /already used by node "Tower_South" \(under "Downtown"\)/);
  assert.doesNotThrow(() => renameNode(net, ['Riverside'], 'uisp:7'), 'its own id is not another node');
});

test('moveNode: the subtree moves to the end of its new parent; under itself or a descendant is refused', () => {
  const net = sample();
  const out = moveNode(net, ['Downtown', 'Tower_North'], ['Riverside']);
  assert.equal(
    text(out),
    '{"Downtown":{"downloadBandwidthMbps":1000,"uploadBandwidthMbps":500,"type":"site","crm":{"ref":7},"children":{"Tower_South":{"downloadBandwidthMbps":600,"uploadBandwidthMbps":300,"type":"site","name":"Tower_South","note":"keep me"}}},' +
      '"Riverside":{"downloadBandwidthMbps":500,"uploadBandwidthMbps":250,"type":"site","id":"uisp:7","children":{"Tower_North":{"downloadBandwidthMbps":400,"uploadBandwidthMbps":200,"type":"site","latitude":39.86,"lon":-89.64,"children":{"AP_N1":{"downloadBandwidthMbps":100,"uploadBandwidthMbps":50,"type":"ap"}}}}}}',
  );
  const top = moveNode(net, ['Downtown', 'Tower_North', 'AP_N1'], []);
  assert.deepEqual(Object.keys(top), ['Downtown', 'Riverside', 'AP_N1']);
  assert.deepEqual((top.Downtown as any).children.Tower_North.children, {});
  assert.throws(() => moveNode(net, ['Downtown'], ['Downtown', 'Tower_North', 'AP_N1']), /"Downtown" cannot move under its own descendant "AP_N1" \(under "Tower_North"\)/);
  assert.throws(() => moveNode(net, ['Downtown', 'Tower_North'], ['Downtown', 'Tower_North']), /cannot move under itself/);
  assert.equal(moveNode(net, ['Riverside'], []), net, 'already there');
  assert.equal(text(net), text(sample()), 'the input object was changed');
  // The picker offers neither the node's own subtree nor its current parent.
  assert.deepEqual(moveTargets(net, ['Downtown', 'Tower_North']).map(pathKey), ['', 'Downtown\u001fTower_South', 'Riverside']);
  assert.deepEqual(moveTargets(net, ['Riverside']).map((p) => p.join('/')), ['Downtown', 'Downtown/Tower_North', 'Downtown/Tower_North/AP_N1', 'Downtown/Tower_South']);
});

test('deleteNode: the node and its subtree go, siblings keep their order', () => {
  const net = sample();
  const out = deleteNode(net, ['Downtown', 'Tower_North']);
  assert.deepEqual(Object.keys((out.Downtown as any).children), ['Tower_South']);
  assert.equal(text(deleteNode(net, ['Downtown'])), text({ Riverside: sample().Riverside }));
  assert.throws(() => deleteNode(net, ['Downtown', 'Nope']), /there is no node "Nope" \(under "Downtown"\)/);
  assert.equal(text(net), text(sample()));
});

test('setField: numbers stored as numbers, text that is not one kept (and flagged), empty removes, the spelling `lon` kept', () => {
  const net = sample();
  const p = ['Downtown', 'Tower_North'];
  let out = setField(net, p, 'downloadBandwidthMbps', '450');
  assert.equal((out.Downtown as any).children.Tower_North.downloadBandwidthMbps, 450);
  assert.deepEqual(Object.keys((out.Downtown as any).children.Tower_North), ['downloadBandwidthMbps', 'uploadBandwidthMbps', 'type', 'latitude', 'lon', 'children'], 'position kept');
  out = setField(out, p, 'longitude', '-89.5');
  assert.equal((out.Downtown as any).children.Tower_North.lon, -89.5);
  assert.equal((out.Downtown as any).children.Tower_North.longitude, undefined);
  out = setField(out, p, 'latitude', '');
  assert.equal('latitude' in (out.Downtown as any).children.Tower_North, false);
  out = setField(out, p, 'uploadBandwidthMbps', '2OO');
  assert.equal((out.Downtown as any).children.Tower_North.uploadBandwidthMbps, '2OO');
  assert.equal(fieldText((out.Downtown as any).children.Tower_North, 'uploadBandwidthMbps'), '2OO');
  out = setField(out, ['Riverside'], 'latitude', '45.5');
  assert.deepEqual(Object.keys(out.Riverside as object), ['downloadBandwidthMbps', 'uploadBandwidthMbps', 'type', 'id', 'latitude'], 'a new key goes last');
  out = setField(out, ['Riverside'], 'type', ' ap ');
  assert.equal((out.Riverside as any).type, 'ap');
  assert.equal(sameFieldValue('downloadBandwidthMbps', '1.', '1'), true, 'typing "1." is not rewritten to "1"');
  assert.equal(sameFieldValue('downloadBandwidthMbps', '1.5', '1'), false);
});

test('checks: each finding names the node and the field', () => {
  const net = sample();
  assert.deepEqual(checkNetwork(net), []);
  let bad = setField(net, ['Downtown', 'Tower_North'], 'downloadBandwidthMbps', 'fast');
  bad = setField(bad, ['Downtown', 'Tower_South'], 'uploadBandwidthMbps', '-3');
  bad = setField(bad, ['Downtown', 'Tower_South'], 'downloadBandwidthMbps', '1200');
  bad = setField(bad, ['Riverside'], 'latitude', '91');
  bad = setField(bad, ['Downtown', 'Tower_North'], 'longitude', '-180.5');
  bad = setField(bad, ['Riverside'], 'downloadBandwidthMbps', '');
  bad = { ...bad, Broken: 5, Dup: { downloadBandwidthMbps: 1, uploadBandwidthMbps: 1, id: 'uisp:7' } };
  const got = checkNetwork(bad).map((i) => `${i.severity} ${i.path.join('/')} ${i.field}: ${i.message}`);
  assert.deepEqual(got, [
    'error Downtown/Tower_North downloadBandwidthMbps: "Tower_North" (under "Downtown"): downloadBandwidthMbps must be a number of Mbps (e.g. 500), not the text "fast"',
    'error Downtown/Tower_North longitude: "Tower_North" (under "Downtown"): lon must be a number between -180 and 180 (it is -180.5)',
    'warning Downtown/Tower_South downloadBandwidthMbps: "Tower_South" (under "Downtown"): downloadBandwidthMbps 1200 Mbps is more than "Downtown" allows (1000 Mbps); lqosd clamps it to the parent\'s',
    'error Downtown/Tower_South uploadBandwidthMbps: "Tower_South" (under "Downtown"): uploadBandwidthMbps is negative (-3); write the capacity in Mbps',
    'warning Riverside downloadBandwidthMbps: "Riverside": downloadBandwidthMbps is missing; the node inherits the link rate — set the site\'s real capacity',
    'error Riverside latitude: "Riverside": latitude must be a number between -90 and 90 (it is 91)',
    'error Broken node: "Broken" is not a node object (it is a number); fix it in the JSON view',
    'error Dup id: "Dup": id "uisp:7" is already used by node "Riverside"; node names must be unique across the whole tree',
  ]);
});

test('checks: a child above its parent is compared with the nearest real node (a virtual node passes its parent through)', () => {
  const net: NetworkObject = {
    Region: {
      downloadBandwidthMbps: 100,
      uploadBandwidthMbps: 100,
      children: { V: { type: 'virtual', downloadBandwidthMbps: 50, uploadBandwidthMbps: 500, children: { Site: { downloadBandwidthMbps: 150, uploadBandwidthMbps: 50, children: { AP: { downloadBandwidthMbps: 120, uploadBandwidthMbps: 60 } } } } } },
    },
  };
  assert.deepEqual(
    checkNetwork(net).map((i) => `${i.path.join('/')} ${i.field}`),
    ['Region/V/Site downloadBandwidthMbps', 'Region/V/Site/AP downloadBandwidthMbps', 'Region/V/Site/AP uploadBandwidthMbps'],
  );
  assert.match(checkNetwork(net)[1]!.message, /120 Mbps is more than "Region" allows \(100 Mbps\)/, 'clamped Site passes Region\'s rate down');
});

test('a duplicate key in two subtrees is an error on the second one; nameProblem says which node has it', () => {
  const net: NetworkObject = { A: { downloadBandwidthMbps: 1, uploadBandwidthMbps: 1, children: { X: { downloadBandwidthMbps: 1, uploadBandwidthMbps: 1 } } }, X: { downloadBandwidthMbps: 1, uploadBandwidthMbps: 1 } };
  assert.deepEqual(checkNetwork(net).map((i) => `${i.path.join('/')} ${i.field} ${i.severity}`), ['X name error']);
  assert.match(nameProblem(net, 'X', ['X']), /already used by node "X" \(under "A"\)/);
});

test('circuit counts: direct and whole-subtree, matched by key, name, id or Parent Node ID', () => {
  const net = sample();
  const circuits = [
    { parentNode: 'AP_N1' },
    { parentNode: 'AP_N1' },
    { parentNode: 'Tower_North' },
    { parentNode: '', parentNodeId: 'uisp:7' },
    { parentNode: 'Nowhere' },
    { parentNode: '' },
  ];
  const c = circuitCounts(net, circuits);
  assert.deepEqual(c.get(pathKey(['Downtown'])), { direct: 0, total: 3 });
  assert.deepEqual(c.get(pathKey(['Downtown', 'Tower_North'])), { direct: 1, total: 3 });
  assert.deepEqual(c.get(pathKey(['Downtown', 'Tower_North', 'AP_N1'])), { direct: 2, total: 2 });
  assert.deepEqual(c.get(pathKey(['Riverside'])), { direct: 1, total: 1 });
  assert.equal(c.get(pathKey(['Downtown', 'Tower_South'])), undefined);
});

test('pending orphans: a rename is told apart from a delete; a move orphans nobody', () => {
  const saved = sample();
  // The last one names Riverside by its id too: the id still matches after a rename, so it keeps its parent.
  const circuits = [{ parentNode: 'AP_N1' }, { parentNode: 'AP_N1' }, { parentNode: 'Tower_South' }, { parentNode: 'Riverside' }, { parentNode: 'Riverside', parentNodeId: 'uisp:7' }];
  let renames = recordRename(new Map(), 'AP_N1', 'AP_X');
  renames = recordRename(renames, 'AP_X', 'AP_Y');
  assert.deepEqual([...renames], [['AP_N1', 'AP_Y']], 'renamed twice: one entry from the saved name');
  let edited = renameNode(saved, ['Downtown', 'Tower_North', 'AP_N1'], 'AP_Y');
  edited = deleteNode(edited, ['Downtown', 'Tower_South']);
  edited = moveNode(edited, ['Riverside'], ['Downtown']);
  assert.deepEqual(pendingOrphans(saved, edited, circuits, renames), [
    { parent: 'AP_N1', count: 2, renamedTo: 'AP_Y' },
    { parent: 'Tower_South', count: 1 },
  ]);
  const riverRenamed = renameNode(edited, ['Downtown', 'Riverside'], 'River');
  assert.deepEqual(pendingOrphans(saved, riverRenamed, circuits, recordRename(renames, 'Riverside', 'River')), [
    { parent: 'AP_N1', count: 2, renamedTo: 'AP_Y' },
    { parent: 'Tower_South', count: 1 },
    { parent: 'Riverside', count: 1, renamedTo: 'River' },
  ]);
  assert.deepEqual([...recordRename(renames, 'AP_Y', 'AP_N1')], [], 'renamed back: no rename left');
});

test('JSON view text: round trip, and what cannot be shown as a tree', () => {
  const net = sample();
  const parsed = parseNetworkText(networkText(net));
  assert.ok('network' in parsed);
  assert.equal(text(parsed.network), text(net));
  assert.deepEqual(parseNetworkText(''), { network: {} });
  assert.match((parseNetworkText('{"a": ') as { error: string }).error, /^not valid JSON: /);
  assert.match((parseNetworkText('[1]') as { error: string }).error, /must be a JSON object/);
});

test('visible rows: parents before children, only under open nodes; ancestors of a node to open', () => {
  const net = sample();
  const rows = (open: string[]) => visibleRows(net, (k) => open.includes(k)).map((r) => `${'  '.repeat(r.depth)}${r.key}${r.hasChildren ? '+' : ''}`);
  assert.deepEqual(rows([]), ['Downtown+', 'Riverside']);
  assert.deepEqual(rows(['Downtown']), ['Downtown+', '  Tower_North+', '  Tower_South', 'Riverside']);
  assert.deepEqual(rows(['Downtown', pathKey(['Downtown', 'Tower_North'])]), ['Downtown+', '  Tower_North+', '    AP_N1', '  Tower_South', 'Riverside']);
  assert.deepEqual(ancestorKeys(['Downtown', 'Tower_North', 'AP_N1']), ['Downtown', pathKey(['Downtown', 'Tower_North'])]);
});

test('open nodes follow a renamed or moved node (its subtree too); others stay', () => {
  const open = [pathKey(['Downtown']), pathKey(['Downtown', 'Tower_North']), pathKey(['Downtown', 'Tower_North', 'AP_N1']), pathKey(['Downtown', 'Tower_North2']), 'Riverside'];
  const got = [...movedKeys(open, ['Downtown', 'Tower_North'], ['Riverside', 'TN'])].map((k) => k.split('\u001f').join('/'));
  assert.deepEqual(got, ['Downtown', 'Riverside/TN', 'Riverside/TN/AP_N1', 'Downtown/Tower_North2', 'Riverside']);
});
