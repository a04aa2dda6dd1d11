// A reduced sample of the power-cut torture (npm run torture runs every write on both engines).

import { test } from "uvu";
import * as assert from "uvu/assert";
import { torture } from "../host-sim/torture";

for (const [transport, engine, stride] of [["http", "node", 3], ["http", "xs", 9], ["mqtt", "node", 5], ["mqtt", "xs", 13]] as const) {
	test(`${transport}, ${engine}: cuts across the whole life cycle break no invariant`, async () => {
		const summary = await torture({ engine, transport, imageBytes: 64 * 1024 + 1000, checkpointBytes: 16384, stride, doubleCutEvery: 4, maxBoots: 6, seed: 7 });
		assert.equal(summary.violations, []);
		assert.ok(summary.cutPointsTried >= summary.totalOps / stride - 1, `${summary.cutPointsTried} of ${summary.totalOps}`);
		assert.ok(summary.doubleCuts > 0);
		assert.ok(summary.bootsToCompletion.max <= 3);
	});
}

test.run();
