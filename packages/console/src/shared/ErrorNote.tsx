import { ApiError } from '../api/http';

/** A refusal or failure in the server's own words; a 403 says plainly that the token may not. */
export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const refused = error instanceof ApiError && error.status === 403;
  return (
    <p className={`note ${refused ? 'refused' : 'error'}`} role="alert">
      {refused ? 'Refused: ' : ''}
      {error.message}
    </p>
  );
}
