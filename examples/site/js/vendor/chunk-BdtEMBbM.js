/*! tiny-timing v1.2.0 | MIT License | (c) 2023 Example Contributors — prebuilt chunk, do not edit */
function e(e,t=100){let n;return function(...r){clearTimeout(n),n=setTimeout(()=>e.apply(this,r),t)}}
function t(e,t=100){let n=0,r;return function(...o){const i=Date.now(),u=t-(i-n);u<=0?(clearTimeout(r),r=void 0,n=i,e.apply(this,o)):r||(r=setTimeout(()=>{n=Date.now(),r=void 0,e.apply(this,o)},u))}}
function n(e){return new Promise(t=>setTimeout(t,e))}
export{e as debounce,n as sleep,t as throttle};
