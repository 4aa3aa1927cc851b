//! People's notes on an incident (schema v11): "rolled back the 14:02 deploy", "CDN ticket
//! 4411 opened". Each has the moment it is about (default: when it was written), its author
//! and its words; they join detection's history and the member messages in the incident's
//! timeline and its post-mortem. Notes are only ever added: a correction is another note.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// The longest note, in characters.
pub const MAX_NOTE: usize = 2_000;

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// Note id.
    pub id: u64,
    /// The incident it is about.
    pub incident: u64,
    /// The moment it is about, Unix ms.
    pub at_ms: i64,
    /// Who wrote it.
    pub author: String,
    /// The words.
    pub text: String,
    /// When it was written, Unix ms.
    pub created_ms: i64,
}

/// Why a note was not added.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// No such incident.
    #[error("no incident {0}")]
    NoIncident(u64),
    /// Empty, or too long.
    #[error("a note needs 1 to {MAX_NOTE} characters")]
    BadText,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Adds a note to incident `incident` about moment `at_ms`; its id.
    pub fn add_note(
        &self,
        incident: u64,
        at_ms: i64,
        author: &str,
        text: &str,
        now_ms: i64,
    ) -> Result<u64, NoteError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTE {
            return Err(NoteError::BadText);
        }
        let Ok(id) = i64::try_from(incident) else {
            return Err(NoteError::NoIncident(incident));
        };
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM incidents WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        if !exists {
            return Err(NoteError::NoIncident(incident));
        }
        self.conn
            .execute(
                "INSERT INTO incident_notes (incident_id, at_ms, author, text, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, at_ms, author, text, now_ms],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(self.conn.last_insert_rowid().unsigned_abs())
    }

    /// Incident `incident`'s notes, by the moment they are about.
    pub fn notes(&self, incident: u64) -> Result<Vec<NoteRecord>, StoreError> {
        let Ok(id) = i64::try_from(incident) else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, at_ms, author, text, created_ms FROM incident_notes
                 WHERE incident_id = ?1 ORDER BY at_ms, id",
            )
            .map_err(|e| self.sqlite(e))?;
        stmt.query_map([id], |r| {
            Ok(NoteRecord {
                id: r.get::<_, i64>(0)?.unsigned_abs(),
                incident,
                at_ms: r.get(1)?,
                author: r.get(2)?,
                text: r.get(3)?,
                created_ms: r.get(4)?,
            })
        })
        .map_err(|e| self.sqlite(e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| self.sqlite(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::incidents::{IncidentRecord, StoredState};

    fn incident(id: u64, updated_ms: i64) -> IncidentRecord {
        IncidentRecord {
            id,
            class: "origin-down".into(),
            state: StoredState::Resolved,
            severity: "page".into(),
            regions: vec!["eu-west".into()],
            targets: vec!["home".into()],
            asns: vec![],
            probe: None,
            edge: None,
            onset_ms: 1_000,
            detected_ms: 2_000,
            ttd_ms: 1_000,
            paged_ms: Some(3_000),
            resolved_ms: Some(9_000),
            explanation: "home fails".into(),
            evidence: vec![],
            timeline: vec![],
            updated_ms,
            maintenance: Default::default(),
        }
    }

    #[test]
    fn notes_are_kept_in_time_order_refused_when_empty_or_orphaned_and_pruned_with_their_incident()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.upsert_incident(&incident(1, 10_000)).unwrap();
        store.upsert_incident(&incident(2, 10_000)).unwrap();
        let late = store
            .add_note(1, 8_000, "dana", "  Rolled back  ", 20_000)
            .unwrap();
        let early = store
            .add_note(1, 4_000, "sam", "Deploy 881 began", 21_000)
            .unwrap();
        let notes = store.notes(1).unwrap();
        assert_eq!(
            notes.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![early, late]
        );
        assert_eq!(notes[1].text, "Rolled back", "trimmed");
        assert_eq!(
            (notes[1].author.as_str(), notes[1].created_ms),
            ("dana", 20_000)
        );
        assert!(matches!(
            store.add_note(7, 1, "dana", "x", 1),
            Err(NoteError::NoIncident(7))
        ));
        assert!(matches!(
            store.add_note(1, 1, "dana", " \n ", 1),
            Err(NoteError::BadText)
        ));
        let long = "x".repeat(MAX_NOTE + 1);
        assert!(matches!(
            store.add_note(1, 1, "dana", &long, 1),
            Err(NoteError::BadText)
        ));
        // Incident 1 ages out (2 is kept: the highest id always is); its notes go with it.
        store.add_note(2, 5_000, "sam", "kept", 22_000).unwrap();
        let pruned = store
            .prune_incidents(10_000 + 86_400_000, std::time::Duration::from_secs(3_600))
            .unwrap();
        assert_eq!(pruned, 1);
        assert!(store.notes(1).unwrap().is_empty());
        assert_eq!(store.notes(2).unwrap().len(), 1);
    }
}
