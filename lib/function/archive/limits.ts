// Limits that stop archive bombs. Sizes in headers are claims: they are checked before data is
// read, and the data actually produced is counted again against the same limits.

export interface ArchiveLimits {
  /** Entries of any type, directories included. */
  maxEntries: number;
  /** Unpacked bytes of one file. */
  maxEntryBytes: number;
  /** Unpacked bytes of all files together. */
  maxTotalBytes: number;
}

const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 10_000,
  maxEntryBytes: 128 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
};

export function withDefaultLimits(limits: Partial<ArchiveLimits> | undefined): ArchiveLimits {
  return { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
}

/** How many bytes a compressed tar may decompress to: the files plus room for headers and padding. */
export function tarStreamLimit(limits: ArchiveLimits): number {
  return limits.maxTotalBytes + limits.maxEntries * 2048 + 1024 * 1024;
}
