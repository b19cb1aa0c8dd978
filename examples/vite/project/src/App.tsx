import { lazy, Suspense, useEffect, useState } from 'react'
import heroImg from './assets/hero.png'
import { useHashRoute } from './router.ts'
import { pageTitle, siteName } from './site.ts'
import './App.css'

// The lazy route: Vite emits About as its own chunk with its own CSS, preloaded through __vite__mapDeps.
const About = lazy(() => import('./About.tsx'))

function Home() {
  const [count, setCount] = useState(0)
  useEffect(() => {
    document.title = pageTitle('Home')
  }, [])
  return (
    <section id="home">
      <img src={heroImg} className="hero" width="170" height="179" alt="" />
      <h1>{siteName}</h1>
      <p>This is the home page. The about page is loaded on demand.</p>
      <button type="button" className="counter" onClick={() => setCount((c) => c + 1)}>
        Count is {count}
      </button>
    </section>
  )
}

function App() {
  const route = useHashRoute()
  return (
    <>
      <nav>
        <a href="#/">Home</a> <a href="#/about">About</a>
      </nav>
      <main>
        {route === '/about' ? (
          <Suspense fallback={<p>Loading…</p>}>
            <About />
          </Suspense>
        ) : (
          <Home />
        )}
      </main>
    </>
  )
}

export default App
