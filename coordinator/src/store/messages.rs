//! Member messages as stored (schema v8): the drafts the coordinator writes for each site
//! incident and stage ([`crate::drafts`]), and what people do with them: edit, approve,
//! publish. Nothing reaches members without a person's approval.
//!
//! A message moves `draft` → `approved` → `published`:
//! - The coordinator *offers* a draft per (incident, stage) as the incident evolves
//!   ([`Store::offer_draft`]). It rewrites its own draft while nobody has touched it (the scope
//!   grew, the next-update time moved on), and never a draft a person edited or approved.
//! - An edit takes the message back to `draft`: an approval is of the exact words published.
//! - Only an approved message is published, and a published one is never changed (a correction
//!   is a new update). Each publication is a moment of the incident's timeline, and the first
//!   one is its time to communicate ([`Store::time_to_communicate`]).
//!
//! Who did it (`*_by`) is the name the caller gives: the CLI's `--by`, later the logged-in user.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::drafts::{Draft, Stage};

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Written by the coordinator or edited by a person; not approved.
    Draft,
    /// Approved as it reads; not yet public.
    Approved,
    /// Public: on the status page and in the feeds. Never changed again.
    Published,
}

impl MessageState {
    /// Lower-case name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Draft => "draft",
            MessageState::Approved => "approved",
            MessageState::Published => "published",
        }
    }

    fn parse(s: &str) -> Option<MessageState> {
        [
            MessageState::Draft,
            MessageState::Approved,
            MessageState::Published,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// One stored member message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    /// Its id.
    pub id: u64,
    /// The incident it is about.
    pub incident: u64,
    /// The stage it was written for.
    pub stage: Stage,
    /// Headline.
    pub title: String,
    /// The message.
    pub body: String,
    /// The regions it concerns (ids), as the incident's scope was when it was written.
    pub regions: Vec<String>,
    /// Where it is in its life.
    pub state: MessageState,
    /// When the coordinator (re)wrote it, Unix ms.
    pub drafted_ms: i64,
    /// Last edit by a person, Unix ms, and who.
    pub edited_ms: Option<i64>,
    /// Who edited it last.
    pub edited_by: Option<String>,
    /// When it was approved, Unix ms.
    pub approved_ms: Option<i64>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// When it was published, Unix ms.
    pub published_ms: Option<i64>,
    /// Who published it.
    pub published_by: Option<String>,
}

/// Why a person's action on a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No message has that id.
    #[error("no message {0}")]
    NotFound(u64),
    /// The message is not in a state that allows it.
    #[error("message {id} is {state}: {why}")]
    Refused {
        /// The message.
        id: u64,
        /// Its state.
        state: &'static str,
        /// What would have to be true.
        why: &'static str,
    },
    /// An edit left the title or the message empty, or no name was given for who acted.
    #[error("{0}")]
    Invalid(&'static str),
}

const COLUMNS: &str = "id, incident_id, stage, title, body, regions, state, drafted_ms, \
     edited_ms, edited_by, approved_ms, approved_by, published_ms, published_by";

impl Store {
    /// Stores the coordinator's draft of `draft.incident` at its stage, scoped to `regions`:
    /// inserted the first time, rewritten while nobody has edited or approved it, left alone
    /// after. Returns the message's id and whether anything was written.
    pub fn offer_draft(
        &self,
        draft: &Draft,
        regions: &[String],
        now_ms: i64,
    ) -> Result<(u64, bool), StoreError> {
        let incident = id_sql(draft.incident)?;
        let existing: Option<(i64, String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT id, state, edited_ms FROM messages
                 WHERE incident_id = ?1 AND stage = ?2 AND auto = 1",
                params![incident, draft.stage.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let regions = serde_json::to_string(regions).unwrap_or_else(|_| "[]".into());
        match existing {
            None => {
                self.conn
                    .execute(
                        "INSERT INTO messages (incident_id, stage, auto, title, body, regions,
                           state, drafted_ms)
                         VALUES (?1, ?2, 1, ?3, ?4, ?5, 'draft', ?6)",
                        params![
                            incident,
                            draft.stage.as_str(),
                            draft.title,
                            draft.body,
                            regions,
                            now_ms
                        ],
                    )
                    .map_err(|e| self.sqlite(e))?;
                Ok((self.conn.last_insert_rowid().unsigned_abs(), true))
            }
            Some((id, state, None)) if state == MessageState::Draft.as_str() => {
                let changed = self
                    .conn
                    .execute(
                        "UPDATE messages SET title = ?2, body = ?3, regions = ?4, drafted_ms = ?5
                         WHERE id = ?1 AND (title <> ?2 OR body <> ?3 OR regions <> ?4)",
                        params![id, draft.title, draft.body, regions, now_ms],
                    )
                    .map_err(|e| self.sqlite(e))?;
                Ok((id.unsigned_abs(), changed > 0))
            }
            Some((id, _, _)) => Ok((id.unsigned_abs(), false)),
        }
    }

    /// A person's new wording of message `id` (either part may stay as it is); an approved
    /// message goes back to `draft`, a published one is never changed.
    pub fn edit_message(
        &self,
        id: u64,
        title: Option<&str>,
        body: Option<&str>,
        by: &str,
        now_ms: i64,
    ) -> Result<MessageRecord, MessageError> {
        let by = who(by)?;
        let m = self.message_or_not_found(id)?;
        if m.state == MessageState::Published {
            return Err(MessageError::Refused {
                id,
                state: m.state.as_str(),
                why: "a published message is never changed; publish a new update instead",
            });
        }
        let title = title.map_or(m.title.as_str(), str::trim);
        let body = body.map_or(m.body.as_str(), str::trim);
        if title.is_empty() || body.is_empty() {
            return Err(MessageError::Invalid("a message needs a title and a text"));
        }
        self.conn
            .execute(
                "UPDATE messages SET title = ?2, body = ?3, state = 'draft', edited_ms = ?4,
                   edited_by = ?5, approved_ms = NULL, approved_by = NULL
                 WHERE id = ?1",
                params![id_sql(id)?, title, body, now_ms, by],
            )
            .map_err(|e| self.sqlite(e))?;
        self.message_or_not_found(id)
    }

    /// Approves message `id` as it reads now.
    pub fn approve_message(
        &self,
        id: u64,
        by: &str,
        now_ms: i64,
    ) -> Result<MessageRecord, MessageError> {
        self.advance(id, Step::Approve, by, now_ms)
    }

    /// Publishes message `id`, which must be approved.
    pub fn publish_message(
        &self,
        id: u64,
        by: &str,
        now_ms: i64,
    ) -> Result<MessageRecord, MessageError> {
        self.advance(id, Step::Publish, by, now_ms)
    }

    /// Moves message `id` one step on, if it is in the state the step starts from.
    fn advance(
        &self,
        id: u64,
        step: Step,
        by: &str,
        now_ms: i64,
    ) -> Result<MessageRecord, MessageError> {
        let by = who(by)?;
        let m = self.message_or_not_found(id)?;
        let (from, why, sql) = match step {
            Step::Approve => (
                MessageState::Draft,
                "only a draft is approved",
                "UPDATE messages SET state = 'approved', approved_ms = ?2, approved_by = ?3
                 WHERE id = ?1",
            ),
            Step::Publish => (
                MessageState::Approved,
                "only an approved message is published",
                "UPDATE messages SET state = 'published', published_ms = ?2, published_by = ?3
                 WHERE id = ?1",
            ),
        };
        if m.state != from {
            return Err(MessageError::Refused {
                id,
                state: m.state.as_str(),
                why,
            });
        }
        self.conn
            .execute(sql, params![id_sql(id)?, now_ms, by])
            .map_err(|e| self.sqlite(e))?;
        self.message_or_not_found(id)
    }

    /// One message by id.
    pub fn message(&self, id: u64) -> Result<Option<MessageRecord>, StoreError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1");
        let row = self
            .conn
            .query_row(&sql, [id], raw)
            .optional()
            .map_err(|e| self.sqlite(e))?;
        row.map(|r| self.decode_message(r)).transpose()
    }

    /// The messages of `incident` (all incidents when `None`), oldest first.
    pub fn messages(&self, incident: Option<u64>) -> Result<Vec<MessageRecord>, StoreError> {
        let (filter, arg) = match incident {
            Some(i) => ("WHERE incident_id = ?1", id_sql(i)?),
            None => ("WHERE ?1 = ?1", 0),
        };
        let sql = format!("SELECT {COLUMNS} FROM messages {filter} ORDER BY id");
        self.query_messages(&sql, arg)
    }

    /// The latest `limit` published messages, newest first: the public status page and feeds.
    pub fn published_messages(&self, limit: usize) -> Result<Vec<MessageRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE state = 'published'
             ORDER BY published_ms DESC, id DESC LIMIT ?1"
        );
        self.query_messages(&sql, i64::try_from(limit).unwrap_or(i64::MAX))
    }

    /// Time to communicate: from the incident's onset to its first published message, ms.
    pub fn time_to_communicate(&self, incident: u64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT min(m.published_ms) - i.onset_ms FROM messages m
                 JOIN incidents i ON i.id = m.incident_id
                 WHERE m.incident_id = ?1 AND m.state = 'published'",
                [id_sql(incident)?],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }

    fn query_messages(&self, sql: &str, arg: i64) -> Result<Vec<MessageRecord>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([arg], raw)
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        rows.into_iter().map(|r| self.decode_message(r)).collect()
    }

    fn message_or_not_found(&self, id: u64) -> Result<MessageRecord, MessageError> {
        self.message(id)?.ok_or(MessageError::NotFound(id))
    }

    fn decode_message(&self, r: Raw) -> Result<MessageRecord, StoreError> {
        let bad = |column: &'static str, detail: String| StoreError::BadIncident {
            path: self.path.clone(),
            id: r.incident_id,
            column,
            detail,
        };
        Ok(MessageRecord {
            id: r.id.unsigned_abs(),
            incident: r.incident_id.unsigned_abs(),
            stage: Stage::parse(&r.stage)
                .ok_or_else(|| bad("messages.stage", format!("unknown stage {:?}", r.stage)))?,
            regions: serde_json::from_str(&r.regions)
                .map_err(|e| bad("messages.regions", e.to_string()))?,
            state: MessageState::parse(&r.state)
                .ok_or_else(|| bad("messages.state", format!("unknown state {:?}", r.state)))?,
            title: r.title,
            body: r.body,
            drafted_ms: r.drafted_ms,
            edited_ms: r.edited_ms,
            edited_by: r.edited_by,
            approved_ms: r.approved_ms,
            approved_by: r.approved_by,
            published_ms: r.published_ms,
            published_by: r.published_by,
        })
    }
}

/// A person's step forward for a message.
#[derive(Debug, Clone, Copy)]
enum Step {
    Approve,
    Publish,
}

fn id_sql(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::IncidentIdOutOfRange(id))
}

/// Who acted, trimmed; never empty: every step of a publication names a person.
fn who(by: &str) -> Result<&str, MessageError> {
    let by = by.trim();
    if by.is_empty() {
        Err(MessageError::Invalid("name who is acting (--by)"))
    } else {
        Ok(by)
    }
}

/// A row as SQLite holds it.
struct Raw {
    id: i64,
    incident_id: i64,
    stage: String,
    title: String,
    body: String,
    regions: String,
    state: String,
    drafted_ms: i64,
    edited_ms: Option<i64>,
    edited_by: Option<String>,
    approved_ms: Option<i64>,
    approved_by: Option<String>,
    published_ms: Option<i64>,
    published_by: Option<String>,
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        stage: r.get(2)?,
        title: r.get(3)?,
        body: r.get(4)?,
        regions: r.get(5)?,
        state: r.get(6)?,
        drafted_ms: r.get(7)?,
        edited_ms: r.get(8)?,
        edited_by: r.get(9)?,
        approved_ms: r.get(10)?,
        approved_by: r.get(11)?,
        published_ms: r.get(12)?,
        published_by: r.get(13)?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::incidents::{IncidentRecord, StoredState};

    const ONSET: i64 = 1_795_788_120_000;

    fn store_with_incident(dir: &std::path::Path, id: u64) -> Store {
        let store = Store::open(dir).expect("store");
        store
            .upsert_incident(&IncidentRecord {
                id,
                class: "regional-network".into(),
                state: StoredState::Paged,
                severity: "page".into(),
                regions: vec!["me-south".into()],
                targets: vec!["www".into()],
                asns: Vec::new(),
                probe: None,
                edge: None,
                onset_ms: ONSET,
                detected_ms: ONSET + 20_000,
                ttd_ms: 20_000,
                paged_ms: Some(ONSET + 21_000),
                resolved_ms: None,
                explanation: "5 of 5 probes in me-south".into(),
                evidence: Vec::new(),
                timeline: Vec::new(),
                updated_ms: ONSET + 21_000,
                maintenance: Default::default(),
            })
            .expect("incident stored");
        store
    }

    fn draft(incident: u64, stage: Stage, body: &str) -> Draft {
        Draft {
            incident,
            class: "regional-network".into(),
            stage,
            title: "Slow pages for members in the Middle East".into(),
            body: body.into(),
        }
    }

    fn regions(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_coordinator_rewrites_its_draft_until_a_person_touches_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_incident(dir.path(), 7);
        let first = draft(
            7,
            Stage::Identified,
            "Members in the Middle East may find it slow.",
        );
        let (id, written) = store
            .offer_draft(&first, &regions(&["me-south"]), ONSET + 30_000)
            .expect("offered");
        assert!(written);
        assert_eq!(
            store
                .offer_draft(&first, &regions(&["me-south"]), ONSET + 40_000)
                .expect("offered"),
            (id, false),
            "the same words are not rewritten"
        );
        // The scope grew: the untouched draft follows it.
        let wider = draft(
            7,
            Stage::Identified,
            "Members in the Middle East and Western India may find it slow.",
        );
        let both = regions(&["ap-south", "me-south"]);
        assert_eq!(
            store
                .offer_draft(&wider, &both, ONSET + 50_000)
                .expect("offered"),
            (id, true)
        );
        let m = store.message(id).expect("read").expect("exists");
        assert_eq!(
            (m.body.as_str(), m.regions.clone(), m.drafted_ms),
            (wider.body.as_str(), both.clone(), ONSET + 50_000)
        );
        // Another stage is another message.
        let (resolved, _) = store
            .offer_draft(
                &draft(7, Stage::Resolved, "It is over."),
                &both,
                ONSET + 60_000,
            )
            .expect("offered");
        assert_ne!(resolved, id);

        // A person's words are theirs: the coordinator no longer rewrites them.
        let edited = store
            .edit_message(id, None, Some("  Our own words.  "), "dana", ONSET + 70_000)
            .expect("edited");
        assert_eq!(
            (edited.body.as_str(), edited.edited_by.as_deref()),
            ("Our own words.", Some("dana"))
        );
        assert_eq!(
            store
                .offer_draft(&first, &both, ONSET + 80_000)
                .expect("offered"),
            (id, false)
        );
        assert_eq!(
            store.message(id).expect("read").expect("exists").body,
            "Our own words."
        );
    }

    #[test]
    fn only_approved_words_are_published_and_published_words_never_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_incident(dir.path(), 7);
        let (id, _) = store
            .offer_draft(
                &draft(7, Stage::Investigating, "Looking into it."),
                &regions(&["me-south"]),
                ONSET + 30_000,
            )
            .expect("offered");
        let refused = store.publish_message(id, "dana", ONSET + 31_000);
        assert!(
            matches!(refused, Err(MessageError::Refused { state: "draft", .. })),
            "{refused:?}"
        );

        let approved = store
            .approve_message(id, "dana", ONSET + 32_000)
            .expect("approved");
        assert_eq!(
            (approved.state, approved.approved_by.as_deref()),
            (MessageState::Approved, Some("dana"))
        );
        // An edit after approval needs approving again.
        let edited = store
            .edit_message(
                id,
                Some("Slow pages in the Middle East"),
                None,
                "lee",
                ONSET + 33_000,
            )
            .expect("edited");
        assert_eq!(
            (edited.state, edited.approved_ms),
            (MessageState::Draft, None)
        );
        assert!(matches!(
            store.publish_message(id, "lee", ONSET + 34_000),
            Err(MessageError::Refused { .. })
        ));
        store
            .approve_message(id, "dana", ONSET + 35_000)
            .expect("approved");
        assert_eq!(store.time_to_communicate(7).expect("read"), None);
        let published = store
            .publish_message(id, "dana", ONSET + 90_000)
            .expect("published");
        assert_eq!(
            (published.state, published.published_ms),
            (MessageState::Published, Some(ONSET + 90_000))
        );
        assert_eq!(store.time_to_communicate(7).expect("read"), Some(90_000));

        for attempt in [
            store.edit_message(id, None, Some("changed"), "lee", ONSET + 95_000),
            store.approve_message(id, "lee", ONSET + 95_000),
            store.publish_message(id, "lee", ONSET + 95_000),
        ] {
            assert!(
                matches!(
                    attempt,
                    Err(MessageError::Refused {
                        state: "published",
                        ..
                    })
                ),
                "{attempt:?}"
            );
        }
        let public = store.published_messages(10).expect("read");
        assert_eq!(public.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
        assert_eq!(public[0].title, "Slow pages in the Middle East");
    }

    #[test]
    fn empty_words_nameless_actors_and_unknown_ids_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_incident(dir.path(), 7);
        let (id, _) = store
            .offer_draft(
                &draft(7, Stage::Identified, "Words."),
                &regions(&["me-south"]),
                ONSET,
            )
            .expect("offered");
        assert!(matches!(
            store.edit_message(id, None, Some("   "), "dana", ONSET),
            Err(MessageError::Invalid(_))
        ));
        assert!(matches!(
            store.approve_message(id, " ", ONSET),
            Err(MessageError::Invalid(_))
        ));
        assert!(matches!(
            store.approve_message(99, "dana", ONSET),
            Err(MessageError::NotFound(99))
        ));
        assert_eq!(
            store.message(id).expect("read").expect("exists").state,
            MessageState::Draft
        );
    }

    #[test]
    fn pruned_incidents_take_their_messages_with_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_incident(dir.path(), 7);
        let mut old = store.incident(7).expect("read").expect("exists");
        old.state = StoredState::Resolved;
        old.resolved_ms = Some(ONSET + 60_000);
        store.upsert_incident(&old).expect("stored");
        let mut newer = old.clone();
        newer.id = 8;
        store.upsert_incident(&newer).expect("stored");
        store
            .offer_draft(
                &draft(7, Stage::Resolved, "Over."),
                &regions(&["me-south"]),
                ONSET,
            )
            .expect("offered");
        store
            .offer_draft(
                &draft(8, Stage::Resolved, "Over."),
                &regions(&["me-south"]),
                ONSET,
            )
            .expect("offered");
        let pruned = store
            .prune_incidents(ONSET + 30 * 86_400_000, Duration::from_secs(86_400))
            .expect("pruned");
        assert_eq!(pruned, 1, "the highest id is kept");
        let left: Vec<u64> = store
            .messages(None)
            .expect("read")
            .iter()
            .map(|m| m.incident)
            .collect();
        assert_eq!(left, vec![8]);
    }
}
