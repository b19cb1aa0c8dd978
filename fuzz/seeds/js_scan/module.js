#!/usr/bin/env node
import def, { a as b, "c" as d } from "./dep.js";
import * as ns from '../ns.mjs';
import "./side-effect.js";
export * from "./re.js";
export { x } from './x.js';
const m = await import(`./lazy.js`);
const img = new URL("./img.png", import.meta.url);
const re = /import "no.js"/g, s = 'import("no.js")', t = `${import("./in-subst.js")}`;
if (a) /regex/.test(s); else x = y / z / w;
//# sourceMappingURL=module.js.map
