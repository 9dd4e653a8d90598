/**
 * The offline world map (world-atlas 110m TopoJSON → GeoJSON countries). Imported only by the Site
 * Map and Flow Globe pages, so the atlas is a chunk of its own that no other page loads.
 */
import type { Feature, FeatureCollection, Geometry } from 'geojson';
import { feature, mesh } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';

export interface World {
  countries: FeatureCollection<Geometry>;
  /** Borders between countries (one MultiLineString). */
  borders: Feature<Geometry> | ReturnType<typeof mesh>;
}

let cached: Promise<World> | undefined;

export function loadWorld(): Promise<World> {
  cached ??= import('world-atlas/countries-110m.json').then((m) => {
    const topo = (m.default ?? m) as unknown as Topology<{ countries: GeometryCollection }>;
    return {
      countries: feature(topo, topo.objects.countries) as FeatureCollection<Geometry>,
      borders: mesh(topo, topo.objects.countries, (a, b) => a !== b),
    };
  });
  return cached;
}

/** Usable site coordinates (as upstream's Site Map: finite, not exactly 0,0, inside Web-Mercator). */
export function validCoords(lat: unknown, lon: unknown): lat is number {
  return (
    typeof lat === 'number' &&
    typeof lon === 'number' &&
    Number.isFinite(lat) &&
    Number.isFinite(lon) &&
    !(lat === 0 && lon === 0) &&
    Math.abs(lat) <= 85.0511 &&
    Math.abs(lon) <= 180
  );
}
