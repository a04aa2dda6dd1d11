/*
	The CloudFormation of the AWS stand-in (query protocol): CreateStack, UpdateStack, DeleteStack, DescribeStacks,
	DescribeStackEvents, for JSON templates.
	  An operation's outcome is decided when it is asked for; DescribeStacks shows it under way (…_IN_PROGRESS) for
	  `steps` answers, then shows its end. Its events are there at once.
	  A resource AWS would refuse fails the operation, which rolls back as AWS does: a creation ends ROLLBACK_COMPLETE
	  with no resources (such a stack can only be deleted), an update UPDATE_ROLLBACK_COMPLETE with the previous
	  template in force. The resources under way with it fail "cancelled" (the stand-in starts them all at once).
	  Refused: a Lambda function of a runtime AWS no longer takes; an SNS topic whose name another stack's topic has.
	  Errors as AWS words them: "No updates are to be performed.", "… state and can not be updated.",
	  AlreadyExistsException, and InsufficientCapabilitiesException for IAM resources without CAPABILITY_IAM.
*/

const region = "us-east-1", account = "123456789012";

interface Resource {
	Type: string;
	Properties?: Record<string, unknown>;
}

export interface Template {
	Resources: { [logicalId: string]: Resource };
	[section: string]: unknown;
}

export interface StackEvent {
	logicalId: string;
	type: string;
	status: string;
	reason: string | undefined;
}

export interface Stack {
	id: string;
	name: string;
	/** The template whose resources exist: after a failed update the previous one, after a failed creation none. */
	template: Template | undefined;
	/** Where the last operation ended, and why. */
	status: string;
	reason: string | undefined;
	/** The status DescribeStacks shows instead, for `describesLeft` more answers, while the operation is under way. */
	underWay: { status: string; describesLeft: number } | undefined;
	/** Oldest first. */
	events: StackEvent[];
}

export type StackAnswer = { result: string } | { error: { code: string; message: string } };

export interface StandInStacks {
	stacks: Map<string, Stack>;
	/** The ids of the stacks whose deletion has been seen to end. */
	deletedStacks: string[];
	answer(action: string, form: URLSearchParams): StackAnswer | undefined;
}

const supportedRuntimes = new Set(["nodejs18.x", "nodejs20.x", "nodejs22.x", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
	"java17", "java21", "dotnet8", "ruby3.3", "provided.al2", "provided.al2023"]);
const updatable = new Set(["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"]);

export function standInStacks(steps: number): StandInStacks {
	const stacks = new Map<string, Stack>();
	const deletedStacks: string[] = [];
	let created = 0;

	const shown = (stack: Stack) => stack.underWay && stack.underWay.describesLeft > 0 ? stack.underWay.status : stack.status;
	/** The stack of that name, unless its deletion has ended. */
	const find = (name: string) => {
		const stack = stacks.get(name);
		if (stack && shown(stack) === "DELETE_COMPLETE") {
			stacks.delete(name);
			deletedStacks.push(stack.id);
			return undefined;
		}
		return stack;
	};

	/** Why AWS would refuse to create or update this resource of stack `own`, if it would. */
	const refusal = (own: string, resource: Resource): string | undefined => {
		const properties = resource.Properties ?? {};
		if (resource.Type === "AWS::Lambda::Function" && !supportedRuntimes.has(String(properties.Runtime)))
			return `Resource handler returned message: "The runtime parameter of ${properties.Runtime} is no longer supported for creating or updating AWS Lambda functions. `
				+ `We recommend you use the new runtime (nodejs20.x) while creating or updating functions. (Service: Lambda, Status Code: 400, Request ID: stand-in)" `
				+ `(RequestToken: stand-in, HandlerErrorCode: InvalidRequest)`;
		if (resource.Type === "AWS::SNS::Topic" && typeof properties.TopicName === "string") {
			const owner = [...stacks.values()].find((stack) => stack.name !== own && Object.values(stack.template?.Resources ?? {})
				.some((other) => other.Type === "AWS::SNS::Topic" && other.Properties?.TopicName === properties.TopicName));
			if (owner) return `${properties.TopicName} already exists in stack ${owner.id}`;
		}
		return undefined;
	};

	/** Creates or updates the stack's resources to `next`, rolling back at the first refused one. */
	const operate = (stack: Stack, kind: "CREATE" | "UPDATE", next: Template) => {
		const event = (logicalId: string, type: string, status: string, reason?: string) => stack.events.push({ logicalId, type, status, reason });
		const end = (status: string, reason?: string) => {
			event(stack.name, "AWS::CloudFormation::Stack", status, reason);
			[stack.status, stack.reason, stack.underWay] = [status, reason, { status: `${kind}_IN_PROGRESS`, describesLeft: steps }];
		};
		const before = stack.template?.Resources ?? {};
		const changed = Object.entries(next.Resources).filter(([id, resource]) => JSON.stringify(before[id]) !== JSON.stringify(resource));
		const verb = (id: string) => (id in before ? "UPDATE" : "CREATE");
		event(stack.name, "AWS::CloudFormation::Stack", `${kind}_IN_PROGRESS`, "User Initiated");
		for (const [id, resource] of changed) event(id, resource.Type, `${verb(id)}_IN_PROGRESS`);
		const refused = changed.findIndex(([, resource]) => refusal(stack.name, resource) !== undefined);
		const done = refused < 0 ? changed : changed.slice(0, refused);
		for (const [id, resource] of done) event(id, resource.Type, `${verb(id)}_COMPLETE`);
		if (refused < 0) {
			const removed = Object.entries(before).filter(([id]) => !(id in next.Resources));
			if (kind === "UPDATE") event(stack.name, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS");
			for (const [id, resource] of removed) event(id, resource.Type, "DELETE_COMPLETE");
			stack.template = next;
			return end(`${kind}_COMPLETE`);
		}
		const failed = changed.slice(refused);
		failed.forEach(([id, resource], index) => event(id, resource.Type, `${verb(id)}_FAILED`,
			index === 0 ? refusal(stack.name, resource) : `Resource ${verb(id) === "CREATE" ? "creation" : "update"} cancelled`));
		const why = `The following resource(s) failed to ${kind.toLowerCase()}: [${failed.map(([id]) => id).sort().join(", ")}].`;
		if (kind === "CREATE") {
			event(stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", `${why} Rollback requested by user.`);
			for (const [id, resource] of done) event(id, resource.Type, "DELETE_COMPLETE");
			stack.template = undefined;
			return end("ROLLBACK_COMPLETE");
		}
		event(stack.name, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_IN_PROGRESS", why);
		for (const [id, resource] of done) event(id, resource.Type, id in before ? "UPDATE_COMPLETE" : "DELETE_COMPLETE");
		end("UPDATE_ROLLBACK_COMPLETE");
	};

	const error = (code: string, message: string) => ({ error: { code, message } });
	/** The template and capabilities of a CreateStack or UpdateStack request, or why AWS would refuse them. */
	const templateOf = (form: URLSearchParams): { template: Template } | { error: { code: string; message: string } } => {
		let template: Template;
		try {
			template = JSON.parse(form.get("TemplateBody") ?? "");
		}
		catch {
			return error("ValidationError", "Template format error: JSON not well-formed. (the stand-in reads JSON templates only)");
		}
		if (!template?.Resources || typeof template.Resources !== "object") return error("ValidationError", "Template format error: At least one Resources member must be defined.");
		const capabilities = [...form.entries()].filter(([key]) => key.startsWith("Capabilities.member.")).map(([, value]) => value);
		const iam = Object.values(template.Resources).some((resource) => resource.Type.startsWith("AWS::IAM::"));
		if (iam && !capabilities.includes("CAPABILITY_IAM") && !capabilities.includes("CAPABILITY_NAMED_IAM"))
			return error("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]");
		return { template };
	};

	const answer = (action: string, form: URLSearchParams): StackAnswer | undefined => {
		const name = form.get("StackName") ?? "";
		switch (action) {
			case "DescribeStacks": {
				const stack = find(name);
				if (!stack) return error("ValidationError", `Stack with id ${name} does not exist`);
				const status = shown(stack);
				if (stack.underWay && stack.underWay.describesLeft > 0) stack.underWay.describesLeft--;
				return { result: `<Stacks><member><StackName>${escapeXml(name)}</StackName><StackId>${escapeXml(stack.id)}</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime>`
					+ `<StackStatus>${status}</StackStatus>${stack.reason ? `<StackStatusReason>${escapeXml(stack.reason)}</StackStatusReason>` : ""}</member></Stacks>` };
			}
			case "DescribeStackEvents": {
				const stack = find(name);
				if (!stack) return error("ValidationError", `Stack [${name}] does not exist`);
				const members = stack.events.map((event, index) => `<member><StackId>${escapeXml(stack.id)}</StackId><EventId>${index + 1}</EventId>`
					+ `<StackName>${escapeXml(stack.name)}</StackName><LogicalResourceId>${escapeXml(event.logicalId)}</LogicalResourceId><ResourceType>${event.type}</ResourceType>`
					+ `<Timestamp>2026-01-01T00:00:${String(index % 60).padStart(2, "0")}Z</Timestamp><ResourceStatus>${event.status}</ResourceStatus>`
					+ `${event.reason ? `<ResourceStatusReason>${escapeXml(event.reason)}</ResourceStatusReason>` : ""}</member>`);
				return { result: `<StackEvents>${members.reverse().join("")}</StackEvents>` };
			}
			case "CreateStack": {
				if (find(name)) return error("AlreadyExistsException", `Stack [${name}] already exists`);
				const request = templateOf(form);
				if ("error" in request) return request;
				const stack: Stack = { id: `arn:aws:cloudformation:${region}:${account}:stack/${name}/${++created}`, name, template: undefined, status: "", reason: undefined, underWay: undefined, events: [] };
				stacks.set(name, stack);
				operate(stack, "CREATE", request.template);
				return { result: `<StackId>${escapeXml(stack.id)}</StackId>` };
			}
			case "UpdateStack": {
				const stack = find(name);
				if (!stack) return error("ValidationError", `Stack [${name}] does not exist`);
				if (!updatable.has(shown(stack))) return error("ValidationError", `Stack:${stack.id} is in ${shown(stack)} state and can not be updated.`);
				const request = templateOf(form);
				if ("error" in request) return request;
				if (JSON.stringify(request.template) === JSON.stringify(stack.template)) return error("ValidationError", "No updates are to be performed.");
				operate(stack, "UPDATE", request.template);
				return { result: `<StackId>${escapeXml(stack.id)}</StackId>` };
			}
			case "DeleteStack": {
				const stack = find(name);
				if (!stack || shown(stack) === "DELETE_IN_PROGRESS") return { result: "" };
				stack.events.push({ logicalId: stack.name, type: "AWS::CloudFormation::Stack", status: "DELETE_IN_PROGRESS", reason: "User Initiated" });
				for (const [id, resource] of Object.entries(stack.template?.Resources ?? {})) stack.events.push({ logicalId: id, type: resource.Type, status: "DELETE_COMPLETE", reason: undefined });
				stack.events.push({ logicalId: stack.name, type: "AWS::CloudFormation::Stack", status: "DELETE_COMPLETE", reason: undefined });
				[stack.template, stack.status, stack.reason, stack.underWay] = [undefined, "DELETE_COMPLETE", undefined, { status: "DELETE_IN_PROGRESS", describesLeft: steps }];
				return { result: "" };
			}
		}
		return undefined;
	};
	return { stacks, deletedStacks, answer };
}

export function escapeXml(text: string): string {
	return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
