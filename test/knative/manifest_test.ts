import { assertEquals, assertOk } from "../_assert.ts";
import { parse } from "yaml";
import { Service } from "@kubernetes-models/knative/serving.knative.dev/v1/Service";
import { ROOT } from "../_fixtures.ts";

// deno-lint-ignore no-explicit-any
const manifest = parse(await Deno.readTextFile(`${ROOT}knative/service.yaml`)) as any;
const template = manifest.spec.template;
const annotations: Record<string, string> = template.metadata.annotations;
const container = template.spec.containers[0];

/** Kubernetes quantities as numbers (cores, bytes) for comparing requests with limits. */
function quantity(value: string | number): number {
  const text = String(value);
  const units: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  const match = text.match(/^(\d+(?:\.\d+)?)([a-zA-Z]*)$/);
  if (!match) throw new Error(`not a quantity: ${text}`);
  return Number(match[1]) * (match[2] ? units[match[2]] : 1);
}

Deno.test("the manifest is a valid Knative Service by Knative's published schema", () => {
  assertEquals([manifest.apiVersion, manifest.kind], ["serving.knative.dev/v1", "Service"]);
  new Service(manifest).validate();
});

Deno.test("autoscaling annotations follow Knative's rules: KPA on concurrency, 10 per pod, 1..10", () => {
  const prefix = "autoscaling.knative.dev/";
  assertEquals(annotations[`${prefix}class`], "kpa.autoscaling.knative.dev");
  assertOk(["concurrency", "rps"].includes(annotations[`${prefix}metric`]), "KPA metric");
  assertEquals(annotations[`${prefix}metric`], "concurrency");
  const target = Number(annotations[`${prefix}target`]);
  const min = Number(annotations[`${prefix}min-scale`]);
  const max = Number(annotations[`${prefix}max-scale`]);
  assertEquals([target, min, max], [10, 1, 10]);
  assertOk(target > 0, "target > 0");
  assertOk(Number.isInteger(min) && Number.isInteger(max) && min >= 0, "whole scales");
  assertOk(min <= max, "min-scale <= max-scale");
  for (const value of Object.values(annotations)) assertEquals(typeof value, "string");
});

Deno.test("readiness is probed on /healthz; requests fit within limits; one http1 port", () => {
  assertEquals(container.readinessProbe.httpGet.path, "/healthz");
  assertEquals(container.ports, [{ name: "http1", containerPort: 8080 }]);
  for (const resource of ["cpu", "memory"]) {
    const request = quantity(container.resources.requests[resource]);
    const limit = quantity(container.resources.limits[resource]);
    assertOk(request > 0 && request <= limit, `${resource}: request ${request} <= limit ${limit}`);
  }
});

Deno.test("the image's drain timeout ends stragglers before Knative's grace period does", async () => {
  const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
  const drain = Number(dockerfile.match(/"--drain-timeout", "(\d+(?:\.\d+)?)"/)![1]);
  const grace = template.spec.timeoutSeconds;
  assertOk(drain < grace, `drain ${drain} s < timeoutSeconds ${grace} s`);
  assertOk(grace - drain <= 10, "but only a bit below it");
});
