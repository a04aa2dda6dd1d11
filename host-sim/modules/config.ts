// "mc/config": the simulated board's build-time configuration.
import { call } from "./host";

const config: Record<string, unknown> = call("config.get");
export default config;
