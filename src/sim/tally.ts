/**
 * Counting shot outcomes. Layer: sim. Why two representations: most keys are short, and a key of
 * at most `KEY_NUMERIC_CHARS_MAX` characters is counted as a number, so a shot allocates no
 * string; longer keys are built as strings.
 */

/**
 * Keys of up to 52 characters are counted as numbers (Σ 2^(52-pos) is exact in a double), so a
 * shot costs no string; longer keys are built as strings.
 */
export const KEY_NUMERIC_CHARS_MAX = 52;

const CHAR_0 = 0x30;
const CHAR_1 = 0x31;
const LATIN1 = new TextDecoder('latin1');

/** Counts shot keys: as numbers up to `KEY_NUMERIC_CHARS_MAX` characters, else as strings. */
export class Tally {
  private key = 0;
  private readonly chars: Uint8Array | null;
  private readonly weights: Float64Array;
  private readonly numeric = new Map<number, number>();
  private readonly text = new Map<string, number>();
  readonly outcomes: string[] = [];

  constructor(
    private readonly length: number,
    private readonly outcomesMax: number,
  ) {
    const numeric = length <= KEY_NUMERIC_CHARS_MAX;
    this.chars = numeric ? null : new Uint8Array(length).fill(CHAR_0);
    this.weights = Float64Array.from(
      { length: numeric ? length : 0 },
      (_, i) => 2 ** (length - 1 - i),
    );
  }

  /** Starts from a stopped run's counts and outcomes (keys as `counts()` gives them). */
  resume(counts: Record<string, number>, outcomes: readonly string[]): void {
    for (const [k, n] of Object.entries(counts)) {
      if (this.chars === null) {
        const key = k === '' ? 0 : Number.parseInt(k, 2);
        this.numeric.set(key, (this.numeric.get(key) ?? 0) + n);
      } else this.text.set(k, (this.text.get(k) ?? 0) + n);
    }
    this.outcomes.push(...outcomes.slice(0, this.outcomesMax));
  }

  clear(): void {
    this.key = 0;
    this.chars?.fill(CHAR_0);
  }

  /** Sets key character `pos` (0 = leftmost) to 1; each position at most once per shot. */
  set(pos: number): void {
    if (this.chars === null) this.key += this.weights[pos]!;
    else this.chars[pos] = CHAR_1;
  }

  commit(): void {
    if (this.chars === null) {
      this.numeric.set(this.key, (this.numeric.get(this.key) ?? 0) + 1);
      if (this.outcomes.length < this.outcomesMax) this.outcomes.push(this.numberKey(this.key));
      return;
    }
    const k = LATIN1.decode(this.chars);
    this.text.set(k, (this.text.get(k) ?? 0) + 1);
    if (this.outcomes.length < this.outcomesMax) this.outcomes.push(k);
  }

  private numberKey(key: number): string {
    return this.length === 0 ? '' : key.toString(2).padStart(this.length, '0');
  }

  /** Counts by key string, keys in ascending order. */
  counts(): Record<string, number> {
    const entries: [string, number][] = [...this.text];
    for (const [k, v] of this.numeric) entries.push([this.numberKey(k), v]);
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    return Object.fromEntries(entries);
  }
}
