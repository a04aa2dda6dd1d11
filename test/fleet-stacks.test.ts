// deploy.sh's stacks through the real AWS CLI against the stand-in's CloudFormation, whose operations stay under way
// for one DescribeStacks answer and roll back as AWS does: every deployment brings the topic stacks and the monitor
// stack to its own templates, so the topics of two deployments in a row coexist; a stack that ends anything but
// CREATE_COMPLETE or UPDATE_COMPLETE stops deploy.sh, with its reason, before any alarm or job; a stack a failed
// creation left ROLLBACK_COMPLETE is deleted and created again only with --recreate-rolled-back.
// Jobs end as soon as they are created: nothing here waits on the wall clock but deploy.sh's own POLL.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startAwsStandIn, succeedAfter, type AwsStandIn, type Call } from "./support/aws-standin";
import { awsCli, deployEnv, deploymentFolder, environment, run, type DeploymentFolder } from "./support/deploy-run";

const monitor = "xs-ota-download-time";
const continuous = (ini: string) => ini.replace("targetSelection = SNAPSHOT", "targetSelection = CONTINUOUS");
const refusedRuntime = "nodejs12.x";

function standIn(): Promise<AwsStandIn> {
	return startAwsStandIn({ plan: () => succeedAfter(0, 0), stackSteps: 1 });
}

/** Runs deploy.sh in the folder; returns its outcome and the calls it made. */
async function deploy(aws: AwsStandIn, where: DeploymentFolder, ...flags: string[]) {
	const from = aws.calls.length;
	const outcome = await run("sh", ["./deploy.sh", ...flags], where.out, environment(where, aws, "deployer", deployEnv));
	const calls = aws.calls.slice(from);
	return { ...outcome, calls, made: (operation: string) => calls.filter((call) => call.operation === operation) };
}

/** The template written in the folder, as deploy.sh sends it. */
function written(where: DeploymentFolder, file: string): unknown {
	return JSON.parse(fs.readFileSync(path.join(where.out, file), "utf8"));
}

/** Edits the properties of the monitor stack's function in the folder's template; returns the template as it was. */
function editFunction(where: DeploymentFolder, edit: (properties: { [name: string]: unknown }) => void): string {
	const file = path.join(where.out, "monitor-stack.json");
	const original = fs.readFileSync(file, "utf8");
	const template = JSON.parse(original);
	edit(template.Resources.MetricFunction.Properties);
	fs.writeFileSync(file, JSON.stringify(template, null, "\t"));
	return original;
}

const refuseRuntime = (where: DeploymentFolder) => editFunction(where, (properties) => (properties.Runtime = refusedRuntime));

/** The topics an alarm notifies that no stack has created. */
function missingTopics(aws: AwsStandIn): string[] {
	const created = [...aws.stacks.values()].filter((stack) => /^(CREATE|UPDATE)_COMPLETE$/.test(stack.status))
		.flatMap((stack) => Object.values(stack.template!.Resources)).filter((resource) => resource.Type === "AWS::SNS::Topic")
		.map((resource) => resource.Properties!.TopicName);
	const notified = [...aws.alarms.values()].flatMap((alarm) => Object.entries(alarm).filter(([key]) => key.startsWith("AlarmActions.member.")).map(([, arn]) => arn.split(":")[5]));
	return notified.filter((topic) => !created.includes(topic));
}

const cloudformation = (calls: Call[]) => calls.filter((call) => call.service === "cloudformation").map((call) => `${call.operation} ${call.answer}`);

if (!awsCli) {
	test("deploy.sh's stacks through the real AWS CLI", () => {
		if (process.env.CI === "true") assert.unreachable("awscli is not installed (apt-get install awscli; .ci/run installs it)");
		console.log("  awscli is not installed: these checks ran nowhere (CI=true makes this a failure)");
	});
	test.run();
}
else {
	test("two deployments in a row: each brings the stacks to its own templates, and the topics of both stay", async () => {
		const aws = await standIn();
		try {
			const first = await deploymentFolder("first");
			// The first deployment's monitor stack as an older xs-ota wrote it: the second one's must replace it.
			editFunction(first, (properties) => (properties.Timeout = 5));
			const one = await deploy(aws, first);
			assert.is(one.code, 0, one.stderr);
			assert.equal(cloudformation(one.calls), [
				"DescribeStacks 400", "CreateStack 200", "DescribeStacks 200", "DescribeStacks 200", // xs-ota-topic-email-notification
				"DescribeStacks 400", "CreateStack 200", "DescribeStacks 200", "DescribeStacks 200", // xs-ota-download-time
			]);
			assert.not.match(one.stderr, /does not exist/, "a stack not there yet is no error to report");

			// The second notifies the same topic and one of its own, like the CountHigh alarm on ota.
			const second = await deploymentFolder("second", (ini) => continuous(ini).replace(/^snsTopics=(.*)$/m, "snsTopics=$1,arn:aws:sns:us-east-1:123456789012:ota"));
			const two = await deploy(aws, second);
			assert.is(two.code, 0, two.stderr);
			assert.equal(cloudformation(two.calls), [
				"DescribeStacks 200", "UpdateStack 400", // email-notification: no updates are to be performed
				"DescribeStacks 400", "CreateStack 200", "DescribeStacks 200", "DescribeStacks 200", // ota
				"DescribeStacks 200", "UpdateStack 200", "DescribeStacks 200", "DescribeStacks 200", // the monitor stack
			]);
			assert.not.match(two.stderr, /No updates/, "a stack that has the template already is no error to report");
			assert.ok(two.calls.findIndex((call) => call.operation === "CreateJob") > two.calls.findLastIndex((call) => call.service === "cloudformation"), "the job after the stacks");

			assert.equal([...aws.stacks.keys()].sort(), [monitor, "xs-ota-topic-email-notification", "xs-ota-topic-ota"]);
			assert.equal([aws.stacks.get(monitor)!.status, aws.stacks.get(monitor)!.template], ["UPDATE_COMPLETE", written(second, "monitor-stack.json")]);
			assert.is(aws.stacks.get(monitor)!.underWay!.describesLeft, 0, "deploy.sh looked until the update had ended");
			assert.equal(aws.stacks.get("xs-ota-topic-ota")!.template, written(second, "xs-ota-topic-ota.json"));
			assert.equal([...aws.alarms.keys()], ["DownloadTimeUpperLimitAlarm"]);
			assert.equal(missingTopics(aws), [], "every topic the alarm notifies has its stack");
		}
		finally {
			await aws.close();
		}
	});

	test("a stack a failed creation left ROLLBACK_COMPLETE stops deploy.sh until --recreate-rolled-back deletes it and creates it again", async () => {
		const aws = await standIn();
		try {
			const where = await deploymentFolder("rolled", continuous);
			const good = refuseRuntime(where);
			const refused = await deploy(aws, where);
			assert.is(refused.code, 1, refused.stderr);
			assert.match(refused.stderr, new RegExp(`deploy: stack ${monitor} is ROLLBACK_COMPLETE: MetricFunction: Resource handler returned message: "The runtime parameter of ${refusedRuntime} is no longer supported`));
			assert.equal([refused.made("PutMetricAlarm").length, refused.made("CreateJob").length], [0, 0]);
			const rolledBack = aws.stacks.get(monitor)!;
			assert.equal([rolledBack.status, rolledBack.template], ["ROLLBACK_COMPLETE", undefined]);

			// The template is right again; the stack that failed is still there, and AWS can only delete it.
			fs.writeFileSync(path.join(where.out, "monitor-stack.json"), good);
			const again = await deploy(aws, where);
			assert.is(again.code, 1, again.stderr);
			assert.match(again.stderr, new RegExp(`stack ${monitor} is left from a failed creation and can only be deleted: ./deploy.sh --recreate-rolled-back deletes it and creates it again`));
			assert.match(again.stderr, /is ROLLBACK_COMPLETE: MetricFunction: .*nodejs12\.x/, "with the reason of the failed creation");
			assert.equal([again.made("DeleteStack").length, again.made("CreateStack").length, again.made("PutMetricAlarm").length, again.made("CreateJob").length], [0, 0, 0, 0]);
			assert.is(aws.stacks.get(monitor), rolledBack);

			const recreated = await deploy(aws, where, "--recreate-rolled-back");
			assert.is(recreated.code, 0, recreated.stderr);
			assert.match(recreated.stderr, new RegExp(`stack ${monitor} is ROLLBACK_COMPLETE: deleting it, to create it again`));
			assert.equal(cloudformation(recreated.calls).slice(-7), ["DescribeStacks 200", "DeleteStack 200", "DescribeStacks 200", "DescribeStacks 400", "CreateStack 200", "DescribeStacks 200", "DescribeStacks 200"]);
			assert.equal(aws.deletedStacks, [rolledBack.id]);
			const stack = aws.stacks.get(monitor)!;
			assert.equal([stack.status, stack.template], ["CREATE_COMPLETE", written(where, "monitor-stack.json")]);
			assert.equal([recreated.made("PutMetricAlarm").length, recreated.made("CreateJob").length], [1, 1]);
			assert.equal(missingTopics(aws), []);
		}
		finally {
			await aws.close();
		}
	});

	test("an update AWS refuses rolls the stack back to its previous template: deploy.sh fails with the reason, before any alarm or job", async () => {
		const aws = await standIn();
		try {
			const earlier = await deploymentFolder("earlier", continuous);
			const before = await deploy(aws, earlier);
			assert.is(before.code, 0, before.stderr);
			const previous = written(earlier, "monitor-stack.json");

			// A later deployment whose template AWS refuses; the flag is for ROLLBACK_COMPLETE only: nothing is deleted.
			const later = await deploymentFolder("later", continuous);
			refuseRuntime(later);
			const failed = await deploy(aws, later, "--recreate-rolled-back");
			assert.is(failed.code, 1, failed.stderr);
			assert.match(failed.stderr, new RegExp(`deploy: stack ${monitor} is UPDATE_ROLLBACK_COMPLETE: MetricFunction: Resource handler returned message: "The runtime parameter of ${refusedRuntime}`));
			assert.equal(cloudformation(failed.calls).slice(-5), ["DescribeStacks 200", "UpdateStack 200", "DescribeStacks 200", "DescribeStacks 200", "DescribeStackEvents 200"]);
			assert.equal([failed.made("DeleteStack").length, failed.made("PutMetricAlarm").length, failed.made("CreateJob").length], [0, 0, 0]);
			const stack = aws.stacks.get(monitor)!;
			assert.equal([stack.status, stack.template], ["UPDATE_ROLLBACK_COMPLETE", previous], "the previous template is in force, not this deployment's");
		}
		finally {
			await aws.close();
		}
	});

	test.run();
}
