//! Drawing: a pure function of the app state (plus the thumbnail cache). Each pane draws itself
//! (`tui/panes/`); `App::draw` lays them out; this module is the entry the runtime and the
//! snapshot tests call, and the colours (`theme`).

pub mod theme;

use ratatui::Frame;

use super::app::App;
pub use super::widgets::{ImageView, MIN_HEIGHT, MIN_WIDTH, NoImages};
use theme::Theme;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &mut App, images: &mut dyn ImageView, theme: &Theme) {
    app.draw(frame, images, theme);
}
