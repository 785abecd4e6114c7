// Where Kubeless puts the function and its installed deps (KUBELESS_INSTALL_VOLUME). A module of its
// own, importing nothing: the Job's contract names it too, and `wait` (every function pod's init
// container) loads that contract without loading the build pipeline.
export const INSTALL_VOLUME = '/kubeless';
