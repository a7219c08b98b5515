/**
 * Content versions: what a cluster holds, without storing bytes.
 *
 * Each cluster remembers the write that last stamped it. Copying data (a job
 * reading a source and writing a target) copies the version objects, so an
 * invariant can say "the target holds exactly the source as it was at time T"
 * by comparing write ids. Write id 0 means "reads as zeroes": never written,
 * write-zeroes and discard all give it, so a zeroed cluster equals a cluster
 * that was never written, as the bytes would.
 */

/** The write that last stamped a cluster. */
export interface ClusterVersion {
  /** Unique per scheduler and increasing in completion order; 0 = reads as zeroes. */
  readonly writeId: number;
  /** The issuer label of the request that stamped it ("guest", "job:backup0", …; "" if never written). */
  readonly writer: string;
}

/** What a never-written cluster reads as. */
export const ZERO_VERSION: ClusterVersion = Object.freeze({ writeId: 0, writer: "" });

/**
 * The versions of a run of clusters, as a read returns it and a copying write
 * takes it. `versions[i]` covers `[offset + i*clusterSizeBytes, +clusterSizeBytes)`;
 * `offset` is cluster-aligned.
 */
export interface Content {
  readonly offset: number;
  readonly clusterSizeBytes: number;
  readonly versions: readonly ClusterVersion[];
}

/** Whether two versions read back as the same data. */
export function sameData(a: ClusterVersion, b: ClusterVersion): boolean {
  return a.writeId === b.writeId;
}

/**
 * The version `content` holds at byte `offset`, so content can move between
 * nodes whose cluster sizes differ. Throws a RangeError outside the content.
 */
export function versionAt(content: Content, offset: number): ClusterVersion {
  const i = Math.floor((offset - content.offset) / content.clusterSizeBytes);
  const v = content.versions[i];
  if (i < 0 || v === undefined) {
    const end = content.offset + content.versions.length * content.clusterSizeBytes;
    throw new RangeError(`content covers [${content.offset}, ${end}), not offset ${offset}`);
  }
  return v;
}
