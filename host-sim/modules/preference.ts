// The Moddable "preference" module (ESP32 NVS flavour) over the simulated board's NVS.
//
// A buffer set over a value whose size this power-on has seen, while the store has room for the difference, can
// fail only by a power cut: it goes as "preference.replaceBuffer", which the xs engine sends along with the next
// call that needs an answer, as it does flash writes (a download's checkpoint record, saved dozens of times a MiB,
// costs no crossing of its own). Room is known from the board: each set and delete answers what is left free.
import { call, callWithData } from "./host";
import { entryCost, maxValueBytes } from "../board/nvs-space";

type Value = string | boolean | number | ArrayBuffer;

/** Bytes the store had free after the last set or delete; undefined until one told, or after one failed. */
let freeBytes: number | undefined;
/** What each value this power-on set or read costs the store now, by domain and key. */
const costs = new Map<string, number>();
const idOf = (domain: string, key: string) => `${domain.length}:${domain}${key}`;

/** Until the board answers a set or delete, neither is known: one that fails may already have erased the old value. */
function forget(id: string): void {
	costs.delete(id);
	freeBytes = undefined;
}

const Preference = {
	set(domain: string, key: string, value: Value): void {
		if (ArrayBuffer.isView(value)) throw new Error("unsupported type");
		const id = idOf(domain, key), known = costs.get(id);
		if (!(value instanceof ArrayBuffer)) {
			forget(id);
			freeBytes = call("preference.set", domain, key, value);
			return;
		}
		const cost = entryCost(value.byteLength);
		// A key set or read before (so its names are good), a value within the limit, and room for the difference.
		if (known !== undefined && freeBytes !== undefined && cost - known <= freeBytes && value.byteLength <= maxValueBytes) {
			callWithData("preference.replaceBuffer", value, domain, key);
			freeBytes -= cost - known;
		}
		else {
			forget(id);
			freeBytes = callWithData("preference.setBuffer", value, domain, key);
		}
		costs.set(id, cost);
	},
	get(domain: string, key: string): Value | undefined {
		const value = call("preference.get", domain, key) ?? undefined;
		if (value instanceof ArrayBuffer) costs.set(idOf(domain, key), entryCost(value.byteLength));
		else costs.delete(idOf(domain, key));
		return value;
	},
	delete(domain: string, key: string): void {
		forget(idOf(domain, key));
		freeBytes = call("preference.delete", domain, key);
	},
	keys(domain: string): string[] {
		return call("preference.keys", domain);
	},
};
export default Preference;
