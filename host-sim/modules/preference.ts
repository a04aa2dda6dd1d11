// The Moddable "preference" module (ESP32 NVS flavour) over the simulated board's NVS.
import { call, callWithData } from "./host";

type Value = string | boolean | number | ArrayBuffer;

const Preference = {
	set(domain: string, key: string, value: Value): void {
		if (value instanceof ArrayBuffer) callWithData("preference.setBuffer", value, domain, key);
		else if (ArrayBuffer.isView(value)) throw new Error("unsupported type");
		else call("preference.set", domain, key, value);
	},
	get(domain: string, key: string): Value | undefined {
		return call("preference.get", domain, key) ?? undefined;
	},
	delete(domain: string, key: string): void {
		call("preference.delete", domain, key);
	},
	keys(domain: string): string[] {
		return call("preference.keys", domain);
	},
};
export default Preference;
