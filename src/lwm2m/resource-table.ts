// A single-instance LwM2M object described as a table: each resource's definition with how to read, write or
// execute it. Objects 0, 1, 3 and 5 of this client are such tables.

import { Code } from "../coap/message";
import type { KindCode, Lwm2mObject, ResourceDef, Value } from "./model";

export interface ResourceBinding {
	id: number;
	kind: KindCode;
	multiple?: boolean;
	read?: () => Value | readonly Value[] | undefined;
	/** Answers a CoAP code: changed, or why not (bad request, method not allowed, …). */
	write?: (value: Value) => number;
	execute?: (args: string) => number;
}

const single: readonly number[] = [0];

export class ResourceTable implements Lwm2mObject {
	readonly id: number;
	readonly version: string;
	readonly resources: readonly ResourceDef[];
	#bindings: readonly ResourceBinding[];

	constructor(id: number, version: string, bindings: readonly ResourceBinding[]) {
		this.id = id;
		this.version = version;
		this.#bindings = bindings;
		this.resources = bindings.map((binding) => ({
			id: binding.id,
			kind: binding.kind,
			multiple: binding.multiple,
			operations: binding.execute ? "E" : binding.read && binding.write ? "RW" : binding.write ? "W" : "R",
		}));
	}

	instances(): readonly number[] {
		return single;
	}

	read(instance: number, resource: number): Value | readonly Value[] | undefined {
		return instance === 0 ? this.#binding(resource)?.read?.() : undefined;
	}

	write(instance: number, resource: number, value: Value): number {
		const write = instance === 0 ? this.#binding(resource)?.write : undefined;
		return write ? write(value) : Code.methodNotAllowed;
	}

	execute(instance: number, resource: number, args: string): number {
		const execute = instance === 0 ? this.#binding(resource)?.execute : undefined;
		return execute ? execute(args) : Code.methodNotAllowed;
	}

	#binding(id: number): ResourceBinding | undefined {
		const bindings = this.#bindings;
		for (let i = 0; i < bindings.length; i++)
			if (bindings[i].id === id) return bindings[i];
		return undefined;
	}
}
