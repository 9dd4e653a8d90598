/** The kernel's CPU list format (`0-3,8,10-11`, as in /sys/devices/system/cpu/online) → CPU numbers. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a)) continue;
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}
