import seedrandom from "seedrandom";

/** A uniform draw in [0, 1). */
export type Rng = () => number;

/**
 * Named sub-streams of one root seed. Each stream is seeded from
 * `${rootSeed}/${name}`, so adding a stream never shifts the draws of another.
 * `alea` rather than the default ARC4: ~9 ns a draw instead of ~80 ns.
 */
export class Streams {
  private readonly made = new Map<string, Rng>();
  constructor(readonly rootSeed: number | string) {}

  /** The stream called `name` (the same object on every call). */
  get(name: string): Rng {
    let rng = this.made.get(name);
    if (!rng) {
      const alea = seedrandom.alea(`${this.rootSeed}/${name}`);
      rng = () => alea();
      this.made.set(name, rng);
    }
    return rng;
  }

  /** Names of the streams created so far, in creation order. */
  names(): string[] {
    return [...this.made.keys()];
  }
}

/** An integer drawn uniformly from [0, n). */
export function below(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}
