/**
 * Read-your-writes across the nodes of a cluster. Every write answers the change number
 * (revision) it committed; a later call that carries it, to any node, is answered only once that
 * node has applied every change up to it. The SDK and the CLI carry the newest revision of their
 * own writes by themselves.
 */

/** HTTP answer header of a write: the revision it committed. */
export const REVISION_HEADER = 'x-muster-revision';

/** HTTP request header: answer only once this node has applied this revision. */
export const MIN_REVISION_HEADER = 'x-muster-min-revision';

/** The same as a query parameter, for a plain GET from a browser or curl. */
export const MIN_REVISION_PARAM = 'minRevision';

/** gRPC request metadata key of the same. */
export const MIN_REVISION_METADATA = 'muster-min-revision';

/**
 * The request field named by the FAILED_PRECONDITION answered to a revision that no node of this
 * registry ever committed (it comes from another registry, or the store was reset): a client
 * then forgets the revision it holds and asks again without it.
 */
export const MIN_REVISION_FIELD = 'minRevision';
