// A reduced sample of the power-cut torture (npm run torture runs every write on both engines), over an HTTP
// pull of an image, an MQTT stream, and a patch (detools heatshrink in esp_delta_ota framing, from the factory
// image) over an HTTP pull, a coap:// pull and an MQTT stream.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { torture, type TortureTransport } from "../host-sim/torture";
import { deltaFixture, patchTarget } from "./support/delta-boards";

const patch = { bytes: deltaFixture("esp-delta-ota.patch"), image: patchTarget };
const samples: [TortureTransport, "node" | "xs", number][] = [["http", "node", 3], ["http", "xs", 9], ["mqtt", "node", 5], ["mqtt", "xs", 13], ["http-patch", "node", 29], ["http-patch", "xs", 89],
	["coap-patch", "node", 31], ["coap-patch", "xs", 89], ["mqtt-patch", "node", 37], ["mqtt-patch", "xs", 89]];

for (const [transport, engine, stride] of samples) {
	test(`${transport}, ${engine}: cuts across the whole life cycle break no invariant`, async () => {
		const summary = await torture({
			engine, transport, imageBytes: 64 * 1024 + 1000, checkpointBytes: 16384, stride, doubleCutEvery: 4, maxBoots: 6, seed: 7,
			...(transport.endsWith("-patch") ? { patch } : {}),
		});
		assert.equal(summary.violations, []);
		assert.ok(summary.cutPointsTried >= summary.totalOps / stride - 1, `${summary.cutPointsTried} of ${summary.totalOps}`);
		assert.ok(summary.doubleCuts > 0);
		assert.ok(summary.bootsToCompletion.max <= 3);
	});
}

test.run();
