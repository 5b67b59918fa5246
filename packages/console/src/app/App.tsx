import { Link, Route, Router, Switch, useRoute } from 'wouter';
import { EventsPage } from '../pages/events/EventsPage';
import { LoginPage } from '../pages/login/LoginPage';
import { OverviewPage } from '../pages/overview/OverviewPage';
import { ServicePage } from '../pages/service/ServicePage';
import { TokensPage } from '../pages/tokens/TokensPage';
import { SessionGate, useSession } from '../session/session';

export function App() {
  return (
    <Router base="/console">
      <SessionGate login={(props) => <LoginPage {...props} />}>
        <Shell />
      </SessionGate>
    </Router>
  );
}

function NavLink({ href, children }: { href: string; children: string }) {
  const [active] = useRoute(href === '/' ? '/' : `${href}/*?`);
  return (
    <Link href={href} className={active ? 'active' : undefined} aria-current={active ? 'page' : undefined}>
      {children}
    </Link>
  );
}

function Shell() {
  const { self, signedIn, signOut } = useSession();
  const admin = self.rights.includes('admin');
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand">
          Muster
        </Link>
        <nav aria-label="Main">
          <NavLink href="/">Overview</NavLink>
          <NavLink href="/events">Events</NavLink>
          {self.auth.enabled && admin && <NavLink href="/tokens">Tokens</NavLink>}
        </nav>
        <div className="who">
          {self.token ? (
            <span title={self.token.rules.join(' ')}>
              token <strong>{self.token.name}</strong> ·{' '}
              {self.rights.length > 0 ? self.rights[self.rights.length - 1] : 'scoped'}
            </span>
          ) : (
            <span className="tag bad" title="anyone who reaches this server can change the registry">
              auth off
            </span>
          )}
          {signedIn && (
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Switch>
          <Route path="/">
            <OverviewPage />
          </Route>
          <Route path="/services/:ns/:svc">
            {(p) => (
              <ServicePage
                key={`${p.ns}/${p.svc}`}
                namespace={decodeURIComponent(p.ns)}
                service={decodeURIComponent(p.svc)}
              />
            )}
          </Route>
          <Route path="/events">
            <EventsPage />
          </Route>
          <Route path="/tokens">
            {admin ? <TokensPage /> : <p className="note refused">Tokens are managed with an admin token.</p>}
          </Route>
          <Route>
            <p className="page-note">
              No such page. <Link href="/">Back to the overview</Link>.
            </p>
          </Route>
        </Switch>
      </main>
    </div>
  );
}
