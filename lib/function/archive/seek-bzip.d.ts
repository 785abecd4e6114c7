declare module 'seek-bzip' {
  interface ByteSink {
    writeByte(byte: number): void;
  }
  interface ByteSource {
    /** The next byte, or undefined at the end (as seek-bzip's own buffer input answers). */
    readByte(): number | undefined;
    read(buffer: Uint8Array, offset: number, length: number): number;
    eof(): boolean;
  }
  /**
   * One decoder over one input. Its methods are the steps decode() takes; they have no public
   * documentation, so decompress.ts uses exactly the calls decode() makes, in its order.
   */
  interface Decoder {
    /** Reads the next block; false at the end of a stream (the stream CRC follows). */
    _init_block(): boolean;
    /** Writes the block read to the output, checking its CRC. */
    _read_bunzip(): void;
    /** Reads the header of a further stream (concatenated .bz2 files). */
    _start_bunzip(input: ByteSource, output: ByteSink): void;
    readonly reader: { read(bits: number): number };
    readonly streamCRC: number;
  }
  const Bunzip: {
    new (input: ByteSource, output: ByteSink): Decoder;
    decode(input: Uint8Array, output?: ByteSink | number | Uint8Array, multistream?: boolean): Buffer | undefined;
    /** The base of input streams: read() over readByte(). */
    Stream: new () => { read(buffer: Uint8Array, offset: number, length: number): number };
  };
  export default Bunzip;
}
