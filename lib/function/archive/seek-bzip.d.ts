declare module 'seek-bzip' {
  interface ByteSink {
    writeByte(byte: number): void;
  }
  const Bunzip: {
    decode(input: Uint8Array, output?: ByteSink | number | Uint8Array, multistream?: boolean): Buffer | undefined;
  };
  export default Bunzip;
}
