// The slice of @2060.io/ffi-napi that libkx.ts uses. Ambient, so it wins over the package's
// own typings (which pull in ref-struct-di). Only libkx.ts may import this module.
declare module '@2060.io/ffi-napi' {
  export type FfiType = 'void' | 'int' | 'uint32' | 'uint64' | 'string' | 'pointer';
  export type FfiArg = number | string | Buffer | null;
  export interface FfiStatic {
    Library(
      path: string,
      funcs: { readonly [name: string]: readonly [FfiType, readonly FfiType[]] },
    ): Record<string, (...args: FfiArg[]) => number>;
  }
  const ffi: FfiStatic;
  export default ffi;
}
