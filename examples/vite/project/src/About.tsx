import { useEffect } from 'react'
import { pageTitle } from './site.ts'
import './About.css'

export default function About() {
  useEffect(() => {
    document.title = pageTitle('About')
  }, [])
  return (
    <section id="about" className="about">
      <h1>About page loaded</h1>
      <p className="about-text">
        This page is a lazy route: its JavaScript and CSS are separate chunks that the entry chunk
        preloads when you open it.
      </p>
    </section>
  )
}
