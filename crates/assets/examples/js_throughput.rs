//! Throughput of the JavaScript scanner on 20 MiB of synthetic minified-looking code (best of five), with
//! and without ES-module import rewriting. A measurement, not a test: the machines are small and noisy.
//!
//!   cargo run --release -p staleguard-assets --example js_throughput

use rand::{Rng, SeedableRng};
use staleguard_assets::js::scan_js;

/// Synthetic minified-looking JS.
fn synthetic(size: usize, seed: u64) -> String {
    const SNIPPETS: &[&str] = &[
        "function a(b,c){return b/c+\"str\\\"ing\"+'x'}",
        "var d=/ab[/]c\\/d/g.test(e)?1:2;",
        "if(x)/re/.exec(y);",
        "const t=`tmpl ${a+`in${b}`} end`;",
        "/* a block comment with import('./no.js') */",
        "// line comment\n",
        "import{a as b,c}from\"./x.js\";",
        "k=import(\"./lazy.js\");",
        "new URL(\"./a.png\",import.meta.url);",
        "x.y.z(1e3,0x1f,.5,a++/2);",
        "o={a:1,b:[1,2,3],c:{d:\"e\"},f:function(){return this.a}};",
        "for(let i=0;i<n;i++){s+=t[i]|0}",
        "class Q extends R{constructor(){super();this.#p=new Map}}",
        "export{q as r};",
        "switch(v){case 1:break;default:w=typeof v}",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(size + 100);
    while out.len() < size {
        out.push_str(SNIPPETS[rng.random_range(0..SNIPPETS.len())]);
        // identifiers of varying length keep the input from being perfectly periodic
        let name_len = 1 + rng.random_range(0..12);
        for _ in 0..name_len {
            out.push(char::from(b'a' + rng.random_range(0..26) as u8));
        }
        out.push(';');
    }
    out.push_str("\n//# sourceMappingURL=bundle.js.map\n");
    out
}

fn main() {
    let src = synthetic(20 << 20, 42);
    for imports in [true, false] {
        let mut best = f64::MAX;
        let mut count = 0;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            count = scan_js(&src, imports).len();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "scan_js(imports: {imports}): {:.1} MB in {:.1} ms = {:.0} MB/s ({count} refs)",
            src.len() as f64 / 1e6,
            best * 1e3,
            src.len() as f64 / 1e6 / best,
        );
    }
}
