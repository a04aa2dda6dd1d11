/*
	The Package (/5/0/0) out of a write in any format LwM2M 1.1 allows for an Opaque resource (Core §7.4), part
	by part in bounded memory: a package is as large as the slot and goes to flash as it arrives, so no format
	is ever buffered whole.
	  opaque (42)       every byte is the package
	  TLV (11542)       one Resource element with id 0: a header of 2 to 6 bytes giving the length up front,
	                    then the value
	  SenML CBOR (112)  an array of one record, a map whose vd (label 8) is a byte string (definite, or
	                    indefinite in chunks); its bn (-2) + n (0), when given, name /5/0/0
	  SenML JSON (110)  [{"bn":"/5/0/","n":"0","vd":"…"}]: one record whose vd is base64url (or base64) text
	The framing around the value is read a byte at a time by a small state machine; the value itself is handed
	on as views into each part — base64 is decoded into one scratch buffer made with the reader, never per part.
	Other labels of the record (a time, say) are skipped when they hold a number, a string or a simple value.
*/

import { ContentFormat } from "../coap/message";

/** Takes the next run of package bytes; false when the package can go no further (the push is over). */
export type PackageSink = (bytes: Uint8Array) => boolean;

export function packageFormat(format: number): boolean {
	return format === ContentFormat.opaque || format === ContentFormat.tlv || format === ContentFormat.senmlCbor || format === ContentFormat.senmlJson;
}

const packagePath = "/5/0/0";
/** bn and n are short: longer text is no name of /5/0/0. */
const maxNameBytes = 32;

export class PackageReader {
	readonly #format: number;
	readonly #decoder: FramingDecoder | undefined;

	constructor(format: number) {
		this.#format = format;
		this.#decoder = format === ContentFormat.tlv ? new TlvPackage() : format === ContentFormat.senmlCbor ? new CborPackage()
			: format === ContentFormat.senmlJson ? new JsonPackage() : undefined;
	}

	/** Feeds the next part of the write: `sink` takes the package bytes in it. A reason when the part is malformed. */
	feed(part: Uint8Array, sink: PackageSink): string | undefined {
		if (this.#format === ContentFormat.opaque) {
			sink(part);
			return undefined;
		}
		return this.#decoder!.feed(part, sink);
	}

	/** The write's last part came: a reason when the value is unfinished or named another resource. */
	end(): string | undefined {
		return this.#decoder?.end();
	}
}

interface FramingDecoder {
	feed(part: Uint8Array, sink: PackageSink): string | undefined;
	end(): string | undefined;
}

/** Text of a name (bn, n) read byte by byte, bounded. */
class ShortText {
	text = "";
	overflow = false;

	add(byte: number): void {
		if (this.text.length >= maxNameBytes || byte < 0x20 || byte > 0x7e) this.overflow = true;
		else this.text += String.fromCharCode(byte);
	}
}

/** bn + n of a SenML record for the Package: both absent, or together /5/0/0. */
function namesPackage(bn: ShortText | undefined, n: ShortText | undefined): boolean {
	if (!bn && !n) return true;
	if (bn?.overflow || n?.overflow) return false;
	return (bn?.text ?? "") + (n?.text ?? "") === packagePath;
}

// TLV: type byte, id (1 or 2 bytes), length (0 to 3 bytes), value.
class TlvPackage implements FramingDecoder {
	#header = new Uint8Array(6);
	#headerBytes = 0;
	#remaining = -1;

	feed(part: Uint8Array, sink: PackageSink): string | undefined {
		let at = 0;
		while (this.#remaining < 0 && at < part.length) {
			this.#header[this.#headerBytes++] = part[at++];
			const type = this.#header[0];
			if (type >> 6 !== 3) return "tlv: the package is one resource element";
			const idBytes = type & 0x20 ? 2 : 1, lengthBytes = (type >> 3) & 3, size = 1 + idBytes + lengthBytes;
			if (this.#headerBytes < size) continue;
			const id = idBytes === 2 ? (this.#header[1] << 8) | this.#header[2] : this.#header[1];
			if (id !== 0) return "tlv: the package is resource 0";
			let length = lengthBytes ? 0 : type & 7;
			for (let i = 1 + idBytes; i < size; i++) length = length * 256 + this.#header[i];
			this.#remaining = length;
		}
		if (at === part.length) return undefined;
		if (part.length - at > this.#remaining) return "tlv: bytes after the package";
		this.#remaining -= part.length - at;
		sink(part.subarray(at));
		return undefined;
	}

	end(): string | undefined {
		return this.#remaining === 0 ? undefined : "tlv: package cut short";
	}
}

/*
	SenML CBOR, as a sequence of states, each item read through its head (major type, argument):
	  array → record map → (label → value)* → [break of an indefinite map] → [break of an indefinite array] → done
	A vd value streams: a definite byte string's bytes, or an indefinite one's chunks up to its break. A text
	label (vlo, …) is skipped, and its value with it.
*/
const Cbor = { array: 0, map: 1, label: 2, value: 3, arrayBreak: 4, chunk: 5, done: 6, vd: 7, name: 8, skip: 9, labelText: 10 } as const;
type CborState = (typeof Cbor)[keyof typeof Cbor];
const indefinite = -1;
const labelBn = -2, labelN = 0, labelVd = 8;

class CborPackage implements FramingDecoder {
	#state: CborState = Cbor.array;
	// The item head being read: its first byte, the argument bytes still to come, the argument so far.
	#initial = -1;
	#argumentBytes = 0;
	#argument = 0;
	#indefiniteArray = false;
	/** Label/value pairs left in a definite map, or indefinite. */
	#pairs = 0;
	/** The label of the value coming; undefined for a text label. */
	#label: number | undefined;
	/** Bytes left of the string being streamed, collected or skipped. */
	#remaining = 0;
	#inChunks = false;
	#vd = false;
	#names: { bn?: ShortText; n?: ShortText } = {};
	#collecting: ShortText | undefined;

	feed(part: Uint8Array, sink: PackageSink): string | undefined {
		let at = 0;
		while (at < part.length) {
			const state = this.#state;
			if (state >= Cbor.vd) {
				// The bytes of a string: the package's, a name's, or ones to skip.
				const take = Math.min(this.#remaining, part.length - at);
				if (state === Cbor.vd) sink(part.subarray(at, at + take));
				else if (state === Cbor.name) for (let i = at; i < at + take; i++) this.#collecting!.add(part[i]);
				at += take;
				this.#remaining -= take;
				if (!this.#remaining) this.#stringDone();
				continue;
			}
			if (state === Cbor.done) return "senml cbor: bytes after the record";
			const byte = part[at++];
			if (this.#initial < 0) {
				const info = byte & 31;
				this.#initial = byte;
				this.#argumentBytes = info < 24 ? 0 : info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : info === 31 ? 0 : -1;
				if (this.#argumentBytes < 0) return "senml cbor: bad item";
				this.#argument = info < 24 ? info : info === 31 ? indefinite : 0;
			}
			else {
				this.#argument = this.#argument * 256 + byte;
				this.#argumentBytes--;
			}
			if (this.#argumentBytes) continue;
			const initial = this.#initial;
			this.#initial = -1;
			const error = this.#item(initial >> 5, this.#argument, initial === 0xff);
			if (error) return error;
		}
		return undefined;
	}

	end(): string | undefined {
		if (this.#state !== Cbor.done) return "senml cbor: record cut short";
		if (!this.#vd) return "senml cbor: no vd";
		return namesPackage(this.#names.bn, this.#names.n) ? undefined : "senml cbor: the record names another resource";
	}

	/** One item's head, read whole, in the current state. */
	#item(major: number, argument: number, isBreak: boolean): string | undefined {
		switch (this.#state) {
			case Cbor.array:
				if (major !== 4 || (argument !== 1 && argument !== indefinite)) return "senml cbor: one record only";
				this.#indefiniteArray = argument === indefinite;
				this.#state = Cbor.map;
				return undefined;
			case Cbor.map:
				if (major !== 5) return "senml cbor: a record is a map";
				this.#pairs = argument;
				return this.#nextLabel();
			case Cbor.label:
				if (isBreak && this.#pairs === indefinite) return this.#mapEnded();
				if (major === 0 || major === 1) {
					this.#label = major === 0 ? argument : -1 - argument;
					this.#state = Cbor.value;
					return undefined;
				}
				if (major !== 3 || argument === indefinite) return "senml cbor: bad label";
				this.#label = undefined;
				return this.#string(Cbor.labelText, argument);
			case Cbor.value:
				return this.#value(major, argument);
			case Cbor.chunk:
				if (isBreak) return this.#pairDone();
				if (major !== 2 || argument === indefinite) return "senml cbor: bad vd chunk";
				return this.#string(Cbor.vd, argument);
			case Cbor.arrayBreak:
				if (!isBreak) return "senml cbor: one record only";
				this.#state = Cbor.done;
				return undefined;
		}
		return "senml cbor: bad item";
	}

	#value(major: number, argument: number): string | undefined {
		const label = this.#label;
		if (label === labelVd) {
			if (major !== 2 || this.#vd) return "senml cbor: vd is one byte string";
			this.#vd = true;
			if (argument !== indefinite) return this.#string(Cbor.vd, argument);
			this.#inChunks = true;
			this.#state = Cbor.chunk;
			return undefined;
		}
		if (label === labelBn || label === labelN) {
			if (major !== 3 || argument === indefinite) return "senml cbor: a name is text";
			this.#collecting = this.#names[label === labelBn ? "bn" : "n"] = new ShortText();
			return this.#string(Cbor.name, argument);
		}
		// Any other value: a number or simple value (its head was all of it), or a definite string.
		if (major === 0 || major === 1 || major === 7) return this.#pairDone();
		if ((major === 2 || major === 3) && argument !== indefinite) return this.#string(Cbor.skip, argument);
		return "senml cbor: unsupported value";
	}

	/** A string's bytes come next; an empty one is over at once. */
	#string(state: CborState, length: number): undefined {
		this.#remaining = length;
		this.#state = state;
		if (!length) this.#stringDone();
		return undefined;
	}

	#stringDone(): void {
		if (this.#state === Cbor.labelText) this.#state = Cbor.value;
		else if (this.#state === Cbor.vd && this.#inChunks) this.#state = Cbor.chunk;
		else this.#pairDone();
	}

	#pairDone(): undefined {
		this.#inChunks = false;
		this.#collecting = undefined;
		if (this.#pairs !== indefinite) this.#pairs--;
		return this.#nextLabel();
	}

	#nextLabel(): undefined {
		if (this.#pairs === indefinite || this.#pairs > 0) this.#state = Cbor.label;
		else this.#mapEnded();
		return undefined;
	}

	#mapEnded(): undefined {
		this.#state = this.#indefiniteArray ? Cbor.arrayBreak : Cbor.done;
		return undefined;
	}
}

/*
	SenML JSON, character by character: [ { "key" : value (, "key" : value)* } ] with white space anywhere
	between. A vd string is base64url (or base64, padding allowed), decoded in groups of four characters into the
	scratch buffer; bn and n are collected; any other value is skipped (a string, or a number or literal).
*/
const Json = { array: 0, record: 1, key: 2, keyText: 3, colon: 4, value: 5, vd: 6, name: 7, skipText: 8, skipEscape: 9, skipWord: 10, next: 11, close: 12, done: 13 } as const;
type JsonState = (typeof Json)[keyof typeof Json];
const scratchBytes = 768;

const base64Values = (() => {
	const values = new Int8Array(128).fill(-1);
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (let i = 0; i < 62; i++) values[alphabet.charCodeAt(i)] = i;
	values[0x2b] = values[0x2d] = 62; // + and -
	values[0x2f] = values[0x5f] = 63; // / and _
	return values;
})();

function isSpace(byte: number): boolean {
	return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

class JsonPackage implements FramingDecoder {
	#state: JsonState = Json.array;
	#key = "";
	#names: { bn?: ShortText; n?: ShortText } = {};
	#collecting: ShortText | undefined;
	#vd = false;
	#scratch = new Uint8Array(scratchBytes);
	#filled = 0;
	#group = 0;
	#groupChars = 0;
	#padding = false;

	feed(part: Uint8Array, sink: PackageSink): string | undefined {
		for (let at = 0; at < part.length; at++) {
			const byte = part[at];
			const state = this.#state;
			if (state === Json.vd) {
				const error = this.#base64(byte, sink);
				if (error) return error;
				continue;
			}
			// An if chain, not a switch: a `continue` out of a switch in a per-byte loop overflowed XS 8.2.3's JS
			// stack on the device (the heatshrink decoder's did), and a string to skip can be long.
			if (state === Json.keyText) {
				if (byte === 0x22) this.#state = Json.colon;
				else if (byte === 0x5c || this.#key.length >= 8) return "senml json: bad label";
				else this.#key += String.fromCharCode(byte);
				continue;
			}
			if (state === Json.name) {
				if (byte === 0x22) this.#state = Json.next;
				else if (byte === 0x5c) return "senml json: escaped name";
				else this.#collecting!.add(byte);
				continue;
			}
			if (state === Json.skipText) {
				if (byte === 0x22) this.#state = Json.next;
				else if (byte === 0x5c) this.#state = Json.skipEscape;
				continue;
			}
			if (state === Json.skipEscape) {
				this.#state = Json.skipText;
				continue;
			}
			if (state === Json.skipWord) {
				if (byte !== 0x2c && byte !== 0x7d && !isSpace(byte)) continue;
				this.#state = Json.next;
			}
			if (isSpace(byte)) continue;
			const error = this.#structure(byte);
			if (error) return error;
		}
		this.#flush(sink);
		return undefined;
	}

	end(): string | undefined {
		if (this.#state !== Json.done) return "senml json: record cut short";
		if (!this.#vd) return "senml json: no vd";
		return namesPackage(this.#names.bn, this.#names.n) ? undefined : "senml json: the record names another resource";
	}

	/** A structural character (white space is skipped before it). */
	#structure(byte: number): string | undefined {
		switch (this.#state) {
			case Json.array:
				if (byte !== 0x5b) return "senml json: not an array";
				this.#state = Json.record;
				return undefined;
			case Json.record:
				if (byte !== 0x7b) return "senml json: a record is an object";
				this.#state = Json.key;
				return undefined;
			case Json.key:
				if (byte !== 0x22) return "senml json: bad label";
				this.#key = "";
				this.#state = Json.keyText;
				return undefined;
			case Json.colon:
				if (byte !== 0x3a) return "senml json: bad record";
				this.#state = Json.value;
				return undefined;
			case Json.value:
				return this.#value(byte);
			case Json.next:
				if (byte === 0x2c) this.#state = Json.key;
				else if (byte === 0x7d) this.#state = Json.close;
				else return "senml json: bad record";
				return undefined;
			case Json.close:
				if (byte !== 0x5d) return "senml json: one record only";
				this.#state = Json.done;
				return undefined;
		}
		return "senml json: bytes after the record";
	}

	#value(byte: number): string | undefined {
		const key = this.#key;
		if (key === "vd" || key === "bn" || key === "n") {
			if (byte !== 0x22) return `senml json: ${key} is a string`;
			if (key === "vd") {
				if (this.#vd) return "senml json: vd twice";
				this.#vd = true;
				this.#state = Json.vd;
			}
			else {
				this.#collecting = this.#names[key] = new ShortText();
				this.#state = Json.name;
			}
			return undefined;
		}
		if (byte === 0x22) this.#state = Json.skipText;
		else if (byte === 0x5b || byte === 0x7b) return "senml json: unsupported value";
		else this.#state = Json.skipWord;
		return undefined;
	}

	/** One character of vd: four make three bytes; its closing quote ends a shorter last group. */
	#base64(byte: number, sink: PackageSink): string | undefined {
		if (byte === 0x22) {
			const chars = this.#groupChars;
			if (chars === 1) return "senml json: bad base64";
			if (chars >= 2) this.#put(this.#group >> (chars === 2 ? 4 : 10), sink);
			if (chars === 3) this.#put((this.#group >> 2) & 0xff, sink);
			this.#group = 0;
			this.#groupChars = 0;
			this.#state = Json.next;
			return undefined;
		}
		if (byte === 0x3d) {
			this.#padding = true;
			return undefined;
		}
		const value = byte < 128 ? base64Values[byte] : -1;
		if (value < 0 || this.#padding) return "senml json: bad base64";
		this.#group = (this.#group << 6) | value;
		if (++this.#groupChars < 4) return undefined;
		const group = this.#group;
		this.#put(group >> 16, sink);
		this.#put((group >> 8) & 0xff, sink);
		this.#put(group & 0xff, sink);
		this.#group = 0;
		this.#groupChars = 0;
		return undefined;
	}

	#put(byte: number, sink: PackageSink): void {
		this.#scratch[this.#filled++] = byte;
		if (this.#filled === this.#scratch.length) this.#flush(sink);
	}

	#flush(sink: PackageSink): void {
		if (!this.#filled) return;
		sink(this.#scratch.subarray(0, this.#filled));
		this.#filled = 0;
	}
}
