// The Moddable "preference" module (ESP32 NVS flavour) over the simulated board's NVS.
//
// A buffer set over a value whose size this power-on has seen, while the store has room for the difference, can
// fail only by a power cut: it goes as "preference.replaceBuffer", which the xs engine sends along with the next
// call that needs an answer, as it does flash writes (a download's checkpoint record, saved dozens of times a MiB,
// costs no crossing of its own). Room is known from the board: each set and delete answers what is left free.
import { call, callWithData } from "./host";
import { entryCost, maxNameLength, maxValueBytes } from "../board/nvs-space";

type Value = string | boolean | number | ArrayBuffer;

/** Bytes the store had free after the last set or delete; undefined until one told, or after one failed. */
let freeBytes: number | undefined;
/** What each value this power-on set or read costs the store now, by domain and key. */
const costs = new Map<string, number>();
const idOf = (domain: string, key: string) => `${domain.length}:${domain}${key}`;

const Preference = {
	set(domain: string, key: string, value: Value): void {
		if (ArrayBuffer.isView(value)) throw new Error("unsupported type");
		const id = idOf(domain, key), known = costs.get(id);
		const cost = value instanceof ArrayBuffer ? entryCost(value.byteLength) : undefined;
		if (cost !== undefined && known !== undefined && freeBytes !== undefined && cost - known <= freeBytes
			&& domain.length <= maxNameLength && key.length <= maxNameLength && (value as ArrayBuffer).byteLength <= maxValueBytes) {
			callWithData("preference.replaceBuffer", value as ArrayBuffer, domain, key);
			freeBytes -= cost - known;
			costs.set(id, cost);
			return;
		}
		// Not atomic: a set that fails may have erased the old value.
		costs.delete(id);
		freeBytes = undefined;
		freeBytes = value instanceof ArrayBuffer ? callWithData("preference.setBuffer", value, domain, key) : call("preference.set", domain, key, value);
		if (cost !== undefined) costs.set(id, cost);
	},
	get(domain: string, key: string): Value | undefined {
		const value = call("preference.get", domain, key) ?? undefined;
		if (value instanceof ArrayBuffer) costs.set(idOf(domain, key), entryCost(value.byteLength));
		else costs.delete(idOf(domain, key));
		return value;
	},
	delete(domain: string, key: string): void {
		costs.delete(idOf(domain, key));
		freeBytes = undefined;
		freeBytes = call("preference.delete", domain, key);
	},
	keys(domain: string): string[] {
		return call("preference.keys", domain);
	},
};
export default Preference;
