// Lets Node run the TypeScript of host-sim/, test/, bench/ and src/ directly: esbuild strips the types,
// and extensionless relative imports (as Moddable's module names need them) resolve to .ts files.
import { register } from "node:module";
register("./ts-loader.mjs", import.meta.url);
