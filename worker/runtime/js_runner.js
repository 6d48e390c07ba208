// SPDX-License-Identifier: MIT
// The JavaScript runtime of workproof-worker (worker/README.md).
//
// Runs ONE task inside the worker's sandbox (namespaces, seccomp, rlimits:
// the real boundary). This file adds the language-level layer: the task's
// code runs in a fresh vm context with no require, import(), process,
// timers, fetch or Buffer, with string/wasm code generation disabled,
// frozen intrinsics, a fixed clock and a seeded Math.random.
//
// Descriptors (set up by the worker):
//   0  the task JSON (the same bytes the worker read)
//   1  stdout: console.log/info/debug, hashed by the worker
//   2  stderr: console.error/warn, counted and capped by the worker
//   3  status: one line, "OK" or the error verdict
// Argument: the task's memory limit in bytes (the worker passes it).
//
// The verdict's class never comes from what the task threw (worker.h,
// "error classes"): a thrown value is RUNTIME_ERROR whatever its name,
// message or code. TIMEOUT is only ever the worker's deadline kill (when
// the vm timeout fires first, this runner waits for that kill);
// MEMORY_LIMIT is V8's heap-limit abort (seen by the worker) or the
// runner's own measurement of the memory in use when the task threw.
'use strict';

const fs = require('fs');
const vm = require('vm');
const v8 = require('v8');
const util = require('util');

const memoryLimit = Number(process.argv[2]) > 0 ? Number(process.argv[2]) : Infinity;

const STATUS_FD = 3;
// Options of util.inspect that never call into task code with a host
// object: no custom inspect functions, no proxy traps, no getters.
const INSPECT = Object.freeze({ customInspect: false, showProxy: false, getters: false, colors: false });

let finished = false;

function status(line) {
  if (finished) return;
  finished = true;
  try { fs.writeSync(STATUS_FD, line + '\n'); } catch (e) { /* the worker decides */ }
}

function clean(s) {
  // one short printable line (the worker sanitizes again)
  return String(s).replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

function writeAll(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

// What a thrown value says, read without running task code where possible
// (no getters, no proxy traps, no toString of objects).
// Objects give "Name: message", primitives their string form.
function describe(e) {
  try {
    if (e === null || (typeof e !== 'object' && typeof e !== 'function')) {
      return typeof e === 'symbol' ? e.toString() : String(e);
    }
    if (util.types.isProxy(e)) return 'exception (proxy)';
    let name = 'Error';
    let message = '';
    const m = Object.getOwnPropertyDescriptor(e, 'message');
    if (m && typeof m.value === 'string') message = m.value;
    let p = e;
    for (let i = 0; p && i < 32; i++) {
      const d = Object.getOwnPropertyDescriptor(p, 'name');
      if (d) {
        if (typeof d.value === 'string') name = d.value;
        break;
      }
      p = Object.getPrototypeOf(p);
      if (p && util.types.isProxy(p)) break;
    }
    return message ? name + ': ' + message : name;
  } catch (err) {
    return 'exception';
  }
}

function isObject(e) {
  return e !== null && (typeof e === 'object' || typeof e === 'function');
}

function fail(kind, msg) {
  status(msg === undefined ? kind : kind + ': ' + clean(msg));
  process.exit(kind === 'BAD_TASK' ? 2 : 1);
}

// node's own vm timeout: an error of THIS realm (the task's values are of
// the context's realm, and no constructor of this realm reaches it) with
// node's code. Checked without running task code (no proxy traps).
function isHostTimeout(e) {
  if (!isObject(e) || util.types.isProxy(e) || !util.types.isNativeError(e)) return false;
  if (!(e instanceof Error)) return false;
  const code = Object.getOwnPropertyDescriptor(e, 'code');
  return code !== undefined && code.value === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

// The memory the task holds now, as V8 counts it: the heap plus external
// memory (ArrayBuffer backing stores, refused under RLIMIT_DATA).
function memoryInUse() {
  try {
    const h = v8.getHeapStatistics();
    return h.total_heap_size + (h.external_memory || 0);
  } catch (err) {
    return 0;
  }
}

// The verdict for a value thrown out of the task (or the vm timeout).
function failWith(e) {
  if (isHostTimeout(e)) {
    // the vm timer starts after node's start-up, so the worker's deadline
    // (from the sandbox's creation) has passed already: it is killing this
    // process, and its kill is the TIMEOUT verdict. Report nothing; wait.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  // over the memory limit when it threw (e.g. an ArrayBuffer refused under
  // RLIMIT_DATA): measured here, not read from what was thrown
  if (memoryInUse() >= memoryLimit) fail('MEMORY_LIMIT');
  fail('RUNTIME_ERROR', isObject(e) ? describe(e) : 'Uncaught ' + describe(e));
}

// --- the context -------------------------------------------------------------

// A null-prototype sandbox object: the global's lookups that fall through
// to it must not reach this realm's Object.prototype (the classic
// this.constructor.constructor escape).
const context = vm.createContext(Object.create(null), {
  name: 'task',
  codeGeneration: { strings: false, wasm: false },
  microtaskMode: 'afterEvaluate',
});

// Called by console.* inside the context with a context array. Returns
// undefined, or a string (a primitive: no host object crosses back) that
// the context side turns into its own TypeError.
function hostWrite(fd, args) {
  try {
    const list = [];
    for (let i = 0; i < args.length; i++) list.push(args[i]);
    writeAll(fd, util.formatWithOptions(INSPECT, ...list) + '\n');
    return undefined;
  } catch (e) {
    return 'console: cannot format the arguments';
  }
}

// Runs inside the context before the task: builds console and input,
// removes nondeterminism, then freezes the intrinsics.
const SETUP = String.raw`(function (hostWrite) {
  'use strict';
  const g = globalThis;
  const O = Object, R = Reflect;
  const defineProperty = O.defineProperty, getOwnPropertyNames = O.getOwnPropertyNames;
  const getOwnPropertySymbols = O.getOwnPropertySymbols, getPrototypeOf = O.getPrototypeOf;
  const getOwnPropertyDescriptor = O.getOwnPropertyDescriptor;
  const TypeErrorC = TypeError, RangeErrorC = RangeError;

  // no wall clock: Date.now() and new Date() are the epoch (1970-01-01)
  const RealDate = Date;
  const FIXED = 0;
  const FakeDate = function Date(...args) {
    if (new.target === undefined) return R.construct(RealDate, [FIXED]).toString();
    return R.construct(RealDate, args.length === 0 ? [FIXED] : args, new.target);
  };
  defineProperty(FakeDate, 'length', { value: 7 });
  FakeDate.prototype = RealDate.prototype;
  defineProperty(RealDate.prototype, 'constructor', { value: FakeDate, writable: true, configurable: true });
  FakeDate.now = function now() { return FIXED; };
  FakeDate.parse = RealDate.parse;
  FakeDate.UTC = RealDate.UTC;
  defineProperty(g, 'Date', { value: FakeDate, writable: true, configurable: true });
  if (typeof Intl === 'object' && Intl.DateTimeFormat) {
    const proto = Intl.DateTimeFormat.prototype;
    const fmt = getOwnPropertyDescriptor(proto, 'format');
    const parts = proto.formatToParts;
    defineProperty(proto, 'format', {
      configurable: true,
      get() { const f = fmt.get.call(this); return (d) => f(d === undefined ? FIXED : d); },
    });
    proto.formatToParts = function formatToParts(d) { return parts.call(this, d === undefined ? FIXED : d); };
  }
  // garbage-collection timing is observable through these: not deterministic
  delete g.WeakRef;
  delete g.FinalizationRegistry;
  delete g.WebAssembly;
  if (typeof Atomics === 'object') delete Atomics.waitAsync;

  const mk = (fd) => function log(...args) {
    let r;
    try { r = hostWrite(fd, args); } catch (e) { throw new RangeErrorC('Maximum call stack size exceeded'); }
    if (r !== undefined) throw new TypeErrorC(r);
  };
  const console = {
    log: mk(1), info: mk(1), debug: mk(1), warn: mk(2), error: mk(2), trace: mk(2),
  };
  defineProperty(g, 'console', { value: O.freeze(console), writable: true, configurable: true });
  // the task's input, defined once the task has arrived (a warm runtime
  // is made ready, frozen intrinsics and all, before it does)
  const parse = JSON.parse;
  const setInput = (inputJson) => defineProperty(g, 'input', {
    value: inputJson === undefined ? undefined : parse(inputJson),
    writable: true, configurable: true, enumerable: true,
  });

  // Freeze every intrinsic reachable from the global object (and the
  // hidden ones). Properties that programs commonly override on derived
  // objects stay writable (non-configurable) on prototypes, to avoid the
  // "override mistake": constructor, toString, valueOf, toLocaleString,
  // toJSON, name, message.
  const OVERRIDABLE = new Set(['constructor', 'toString', 'valueOf', 'toLocaleString', 'toJSON', 'name', 'message']);
  const seen = new Set();
  const todo = [];
  const isProto = new Set();
  const push = (v) => {
    if (v === g) return; // the global object stays extensible: tasks define globals
    if ((typeof v === 'object' && v !== null) || typeof v === 'function') {
      if (!seen.has(v)) { seen.add(v); todo.push(v); }
    }
  };
  for (const k of getOwnPropertyNames(g)) {
    if (k === 'console' || k === 'input' || k === 'globalThis') continue;
    const d = getOwnPropertyDescriptor(g, k);
    if (d && 'value' in d) push(d.value);
  }
  const hidden = [
    getPrototypeOf(function* () {}), getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}), getPrototypeOf(Uint8Array),
    getPrototypeOf([][Symbol.iterator]()), getPrototypeOf(''[Symbol.iterator]()),
    getPrototypeOf(new Map()[Symbol.iterator]()), getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(/x/[Symbol.matchAll]('')),
    getPrototypeOf(getPrototypeOf([][Symbol.iterator]())),
    getPrototypeOf((function* () {})()), getPrototypeOf((async function* () {})()),
    getOwnPropertyDescriptor(Function.prototype, 'caller')?.get,
  ];
  for (const h of hidden) push(h);
  for (const v of seen) if (typeof v === 'function' && v.prototype) isProto.add(v.prototype);
  while (todo.length) {
    const o = todo.pop();
    push(getPrototypeOf(o));
    const keys = [...getOwnPropertyNames(o), ...getOwnPropertySymbols(o)];
    for (const k of keys) {
      const d = getOwnPropertyDescriptor(o, k);
      if (!d) continue;
      if ('value' in d) push(d.value); else { push(d.get); push(d.set); }
      if (typeof d.value === 'function' && d.value.prototype) isProto.add(d.value.prototype);
    }
  }
  for (const o of seen) {
    if (isProto.has(o)) {
      O.preventExtensions(o);
      const keys = [...getOwnPropertyNames(o), ...getOwnPropertySymbols(o)];
      for (const k of keys) {
        const d = getOwnPropertyDescriptor(o, k);
        if (!d || !d.configurable) continue;
        if ('value' in d) defineProperty(o, k, { writable: !!d.writable && OVERRIDABLE.has(k), configurable: false });
        else defineProperty(o, k, { configurable: false });
      }
    } else {
      O.freeze(o);
    }
  }
  return setInput;
})`;

let setInput;
try {
  setInput = new vm.Script(SETUP, { filename: 'workproof-setup.js' }).runInContext(context)(hostWrite);
} catch (e) {
  status('RUNTIME_ERROR: runtime setup failed: ' + clean(describe(e)));
  process.exit(1);
}

// --- the task (read once the context is ready: a warm runtime waits here) ---

let task;
try {
  task = JSON.parse(fs.readFileSync(0, 'utf8'));
} catch (e) {
  fail('BAD_TASK', 'cannot read the task JSON');
}
if (typeof task !== 'object' || task === null || typeof task.code !== 'string') {
  fail('BAD_TASK', 'task without code');
}
// inputJson is the input as the client wrote it (parsed in the context, so
// -0, key order and every digit survive); `input` is the older form.
const inputJson = typeof task.inputJson === 'string' ? task.inputJson
  : task.input === undefined ? undefined : JSON.stringify(task.input);
const timeout = Number.isInteger(task.timeoutMs) && task.timeoutMs > 0 ? task.timeoutMs : 30000;

try {
  setInput(inputJson);
} catch (e) {
  status('RUNTIME_ERROR: runtime setup failed: ' + clean(describe(e)));
  process.exit(1);
}

// --- run ------------------------------------------------------------------

// import() must reject with an error of the context's realm: an error of
// this realm would hand the task this realm's constructors.
const contextError = vm.runInContext('(m) => new Error(m)', context);

let rejected;
process.on('unhandledRejection', (reason) => {
  if (rejected === undefined) rejected = 'Uncaught (in promise) ' + describe(reason);
});

try {
  const script = new vm.Script(task.code, {
    filename: 'task.js',
    importModuleDynamically() {
      throw contextError('import() is not available');
    },
  });
  script.runInContext(context, { timeout, breakOnSigint: false, displayErrors: false });
} catch (e) {
  failWith(e);
}

// One more turn: reactions the host queued late (an import() rejection)
// run in the context under the same timeout, and node reports rejections
// left unhandled (recorded above). The task has no timers, so nothing of
// it can run after this.
const drain = new vm.Script('undefined', { filename: 'workproof-drain.js' });
setImmediate(() => {
  try {
    drain.runInContext(context, { timeout, breakOnSigint: false, displayErrors: false });
  } catch (e) {
    failWith(e);
  }
  setImmediate(() => {
    if (rejected !== undefined) fail('RUNTIME_ERROR', rejected);
    // the output is complete: say so with every pipe closed, so the worker
    // need not wait for node's teardown
    try { fs.closeSync(1); fs.closeSync(2); } catch (e) { /* the worker decides */ }
    status('OK');
    try { fs.closeSync(STATUS_FD); } catch (e) { /* the worker decides */ }
    process.exit(0);
  });
});
