#!/usr/bin/env node
'use strict';
// Offline half of `check-deploy`: what `scf deploy --stage S` would send, computed with the
// CLI's own config loader and the component toolkit's own formatters (pinned in package.json).
//
//   node resolve.js --stage dev FUNCTION_DIR [LAYER_DIR ...]
//
// Prints one JSON document on stdout: for each instance directory, the resolved config, the
// .env file that was loaded, and (component scf) the CreateFunction parameters plus one
// CreateTrigger request per event. No network: the org is given (else the loader asks the
// platform), credentials are empty, and nothing but formatInputs is called.

const path = require('path');
const fs = require('fs');

const argv = require('minimist')(process.argv.slice(2), { string: ['stage'] });
const stage = argv.stage || '';
const dirs = argv._.map((d) => path.resolve(d));

// The loader reads --org/--stage from process.argv when it is first required
// (@serverless/components src/cli/commands-cn/utils.js: `require('minimist')(process.argv…)`).
process.argv = [process.argv[0], 'scf', 'deploy', '--org', 'offline-check'].concat(
  stage ? ['--stage', stage] : []
);
process.env.SERVERLESS_PLATFORM_VENDOR = 'tencent';

const componentsCli = path.dirname(require.resolve('@serverless/components/src/cli/index.js'));
const { loadInstanceConfig } = require(path.join(componentsCli, 'commands-cn', 'utils.js'));
const { loadInstanceConfigUncached } = require(path.join(componentsCli, 'utils.js'));
// The CLI's own dotenv (a dependency of @serverless/components), not whatever is hoisted.
const dotenv = require(require.resolve('dotenv', { paths: [componentsCli] }));
const { formatInputs } = require('tencent-component-toolkit/lib/modules/scf/utils');
const TRIGGERS = require('tencent-component-toolkit/lib/modules/triggers').default;

// Same search as @serverless/components src/cli/index.js (lines 60–83): relative to the
// directory the CLI runs in, .env.<stage> before .env, then .. and ../..; only the first
// file found is loaded, and dotenv never overrides a variable already set.
function loadEnvFile(cwd) {
  const raw = loadInstanceConfigUncached(cwd);
  const envStage = stage || (raw && raw.stage) || 'dev';
  const candidates = [];
  for (const up of ['.', '..', '../..']) {
    candidates.push(path.join(cwd, up, `.env.${envStage}`), path.join(cwd, up, '.env'));
  }
  const found = candidates.find((p) => {
    try {
      const st = fs.lstatSync(p);
      return st.isFile() || st.isSymbolicLink();
    } catch (e) {
      return false;
    }
  });
  if (found) dotenv.config({ path: path.resolve(found) });
  return found ? path.resolve(found) : null;
}

// ${output:${stage}:${app}:<instance>.<key>} is resolved by the platform at deploy time.
const OUTPUT_RE = /^\$\{output:[^:]+:[^:]+:([^.}]+)\.(\w+)\}$/;

function placeholderLayers(layers, instances) {
  return (layers || []).map((layer) => {
    const out = {};
    for (const key of ['name', 'version']) {
      const m = typeof layer[key] === 'string' ? layer[key].match(OUTPUT_RE) : null;
      const target = m && instances.find((i) => i.config && i.config.name === m[1]);
      if (m && key === 'name' && target) out[key] = target.config.inputs.name;
      else if (m && key === 'version') out[key] = 0; // the deployed layer version, unknown offline
      else out[key] = layer[key];
    }
    return out;
  });
}

function scfRequests(inputs, instances, region) {
  // The component runs the toolkit with code already uploaded and ${output:} resolved: fill
  // both with placeholders (toolkit lib/modules/scf/utils.js formatInputs reads code.bucket/object).
  const fnInputs = Object.assign({}, inputs, {
    code: { bucket: '<code bucket>', object: '<code object>' },
    layers: inputs.layers ? placeholderLayers(inputs.layers, instances) : undefined,
  });
  const fn = formatInputs(fnInputs);
  const triggers = (inputs.events || []).map((event) => {
    const type = Object.keys(event || {})[0];
    const Trigger = TRIGGERS[type];
    if (!Trigger || type === 'apigw') {
      // apigw formatting talks to API Gateway (toolkit triggers/apigw.js); none can be created anyway.
      return { type, error: Trigger ? 'not formatted offline' : `unknown trigger type ${type}` };
    }
    // As the toolkit does in lib/modules/scf/index.js filterTriggers.
    const instance = new Trigger({ credentials: {}, region });
    const { triggerInputs, triggerKey } = instance.formatInputs({
      region,
      inputs: Object.assign({ namespace: fn.Namespace, functionName: fn.FunctionName }, event[type]),
    });
    return { type, triggerKey, request: triggerInputs };
  });
  return { function: fn, triggers };
}

async function main() {
  const original = Object.assign({}, process.env);
  const instances = [];
  for (const dir of dirs) {
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const envFile = loadEnvFile(dir);
      // Before resolution: what the file declares (an unset ${env:} is dropped from `config`).
      const raw = loadInstanceConfigUncached(dir) || {};
      const declared = ((raw.inputs || {}).environment || {}).variables || {};
      // Names the .env file sets to something, parsed by the same dotenv.
      const envFileKeys = envFile
        ? Object.entries(dotenv.parse(fs.readFileSync(envFile))).filter(([, v]) => v !== '').map(([k]) => k)
        : [];
      // The CLI sends the resolved config to the platform as JSON, so keys whose ${env:} is
      // unset (undefined) are gone by the time the component and the toolkit see them.
      const config = JSON.parse(JSON.stringify(await loadInstanceConfig(dir, 'deploy')));
      instances.push({ dir, envFile, envFileKeys, declared, config });
    } catch (e) {
      instances.push({ dir, error: String((e && e.message) || e) });
    } finally {
      process.chdir(cwd);
      for (const key of Object.keys(process.env)) if (!(key in original)) delete process.env[key];
      Object.assign(process.env, original);
    }
  }
  for (const instance of instances) {
    if (!instance.config || instance.config.component !== 'scf') continue;
    try {
      const inputs = instance.config.inputs || {};
      instance.requests = scfRequests(inputs, instances, inputs.region || 'ap-guangzhou');
    } catch (e) {
      instance.requestsError = String((e && e.message) || e);
    }
  }
  process.stdout.write(JSON.stringify({ stage, instances }, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`resolve.js: ${(e && e.stack) || e}\n`);
  process.exit(2);
});
