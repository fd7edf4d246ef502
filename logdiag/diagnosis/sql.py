"""What a statement wrote, from its SQL: the only module that imports pglast.

Statements are parsed only for transactions that ended in an incident (pglast parses about 10k
statements a second), so callers hand in one statement's text and its bind parameters and get
back the writes it made: table, columns, and the rows' values where the text says them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from logdiag.diagnosis.statements import may_hold_several
from logdiag.diagnosis.values import parse_array_literal, same_canonical

if TYPE_CHECKING:  # pglast is imported where it is used: loading it takes a third of a second
    from pglast import ast
    from pglast.visitors import Ancestor

#: A value as PostgreSQL would print it in a DETAIL key: text, or None for SQL NULL.
Value = str | None


class UnknownValue:
    """A value the statement computes (an expression, DEFAULT, a subquery): not known from the log."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = UnknownValue()
Cell = Value | UnknownValue


class WriteKind(str, Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    MERGE = "merge"
    COPY = "copy"
    CALL = "call"  # a function or procedure call: what it writes is unknown

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Write:
    """One write a statement makes.

    Attributes:
        kind: insert, update, delete, merge, copy, or call.
        table: the table's name as PostgreSQL prints it in messages (no schema), or None (call).
        schema: the schema, when the statement names one.
        columns: the target columns, or None when the statement does not list them.
        rows: the rows' values in ``columns`` order; None when the rows are not in the text
            (COPY, INSERT ... SELECT from a table, a function call).
        where: for UPDATE and DELETE, the ``column = value`` conditions of the WHERE clause.
        function: the function or procedure called, for ``call``.
        arguments: a call's arguments (UNKNOWN where computed), for ``call``.
    """

    kind: WriteKind
    table: str | None
    schema: str | None = None
    columns: tuple[str, ...] | None = None
    rows: tuple[tuple[Cell, ...], ...] | None = None
    where: Mapping[str, Cell] = field(default_factory=dict)
    function: str | None = None
    arguments: tuple[Cell, ...] = ()

    def values_of(self, columns: Sequence[str]) -> Iterator[tuple[Cell, ...]]:
        """Each row's values for ``columns`` (UNKNOWN where the row does not set one)."""
        if self.rows is None or self.columns is None:
            return
        index = {name: position for position, name in enumerate(self.columns)}
        for row in self.rows:
            yield tuple(row[index[c]] if c in index and index[c] < len(row) else UNKNOWN for c in columns)


@dataclass(frozen=True, slots=True)
class ConstraintDefinition:
    """A constraint declared in DDL seen in the log."""

    table: str
    name: str | None
    kind: str  # "foreign_key", "unique", "primary_key", "exclusion", "check"
    columns: tuple[str, ...]
    deferrable: bool
    initially_deferred: bool
    referenced_table: str | None = None
    referenced_columns: tuple[str, ...] = ()  # a foreign key's, when its REFERENCES lists them


@dataclass(frozen=True, slots=True)
class TriggerDefinition:
    """A trigger declared by ``CREATE [CONSTRAINT] TRIGGER`` seen in the log (issue 26).

    Attributes:
        name: the trigger's name (a constraint trigger's is also its constraint's).
        table: the table it is on.
        function: the function it runs, without schema.
        events: the writes it fires on, among ``insert``, ``update``, ``delete``, ``truncate``.
        constraint: CREATE CONSTRAINT TRIGGER.
        deferrable, initially_deferred: its declaration.
    """

    name: str
    table: str
    function: str
    events: frozenset[str]
    constraint: bool
    deferrable: bool
    initially_deferred: bool


#: CreateTrigStmt.events bits (PostgreSQL's TRIGGER_TYPE_INSERT, _DELETE, _UPDATE, _TRUNCATE).
_TRIGGER_EVENTS = {4: "insert", 8: "delete", 16: "update", 32: "truncate"}


@dataclass(frozen=True, slots=True)
class StatementWrites:
    """What one statement's text writes, and the DDL it declares: everything logdiag learns from it.

    Attributes:
        writes: the writes, in order.
        tables: for CREATE TABLE, each table's column order.
        types: for CREATE TABLE, each table's columns' type names (``tsrange``, ``int4``,
            ``numeric``; ``int4[]`` for an array), without schema or modifiers.
        constraints: constraints declared by CREATE TABLE or ALTER TABLE.
        partitions: each partition's partitioned table (``CREATE TABLE ... PARTITION OF``,
            ``ALTER TABLE ... ATTACH PARTITION``).
        triggers: triggers declared by CREATE [CONSTRAINT] TRIGGER.
        set_constraints: for SET CONSTRAINTS, (names or ("ALL",), deferred?).
        execute_arguments: for ``EXECUTE name(...)``, its arguments (None where one is NULL or
            not a constant); None for any other statement.
        error: why the text could not be parsed, or None.
    """

    writes: tuple[Write, ...] = ()
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    constraints: tuple[ConstraintDefinition, ...] = ()
    partitions: Mapping[str, str] = field(default_factory=dict)
    triggers: tuple[TriggerDefinition, ...] = ()
    set_constraints: tuple[tuple[str, ...], bool] | None = None
    execute_arguments: tuple[Value, ...] | None = None
    error: str | None = None


def statement_writes(
    text: str,
    parameters: Mapping[str, Value] | None = None,
    table_columns: Mapping[str, Sequence[str]] | None = None,
) -> StatementWrites:
    """Parse ``text`` and say what it writes.

    Args:
        text: one or more SQL statements.
        parameters: bind parameters, ``{"$1": "42"}``; None values are SQL NULL.
        table_columns: column order of tables whose CREATE TABLE was seen, for INSERTs that do
            not list their columns.

    Returns:
        What it writes; a text pglast cannot parse gives a result with ``error`` set (and nothing else).

    >>> statement_writes("INSERT INTO orders (id, customer_id) VALUES (1, $1)", {"$1": "42"}).writes[0].rows
    (('1', '42'),)
    >>> statement_writes("EXECUTE ins(42, NULL, now())").execute_arguments
    ('42', None, None)
    """
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    try:
        statements = parse_sql(text)
    except ParseError as exc:
        return StatementWrites(error=f"not parsed: {exc}")
    except (ValueError, RecursionError, MemoryError) as exc:  # pragma: no cover - defensive
        return StatementWrites(error=f"not parsed: {type(exc).__name__}")
    builder = _Builder(parameters or {}, table_columns or {})
    for node in _nodes_in_text_order(statements):
        builder.add(node)
    first = statements[0].stmt if statements else None
    return StatementWrites(
        writes=tuple(builder.writes),
        tables=builder.tables,
        types=builder.types,
        constraints=tuple(builder.constraints),
        partitions=builder.partitions,
        triggers=tuple(builder.triggers),
        set_constraints=builder.set_constraints,
        execute_arguments=_arguments(first) if isinstance(first, ast.ExecuteStmt) else None,
        error=None,
    )


# --- finding the nodes: pglast's Visitor ----------------------------------------------------------
#
# pglast's Visitor walks the tree breadth first, but the writes must come out in the order the text
# says them, depth first: the first write of a statement that matches the key gives its culprit's
# reason. So the finder notes each node it keeps with its place in the tree, and the nodes are
# sorted by place: a node's place is a prefix of its children's, so that sort is depth first.

#: A node's place in the tree: the index of each member on the way down from the root to it.
_Place = tuple[int, ...]


def _nodes_in_text_order(tree: tuple[ast.RawStmt, ...]) -> list[ast.Node]:
    """The nodes of ``tree`` a StatementWrites is made of, in the order of the text: the
    statements that write or declare, and the functions that select lists call.

    A function call counts once for each SELECT (not part of a write) whose select list holds
    it, even through a subquery, right after that SELECT and before anything inside it."""
    found = _finder()(tree)
    found.sort(key=lambda item: item[0])
    return [node for _, node in found]


@cache
def _finder() -> Callable[[tuple[ast.RawStmt, ...]], list[tuple[_Place, ast.Node]]]:
    """The finder, a pglast Visitor: defined on first use, when pglast is imported."""
    from pglast import ast
    from pglast.visitors import Skip, Visitor

    writing = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)

    class Finder(Visitor):
        # A visit method returns None (go on into the node) or Skip (do not): whatever else it
        # returned would replace the node in the tree.

        def __init__(self) -> None:
            self.found: list[tuple[_Place, ast.Node]] = []

        def keep(self, ancestors: Ancestor, node: ast.Node) -> None:
            self.found.append((_place(ancestors), node))

        visit_InsertStmt = visit_UpdateStmt = visit_DeleteStmt = visit_MergeStmt = visit_CopyStmt = keep
        visit_CallStmt = visit_DoStmt = visit_CreateStmt = visit_AlterTableStmt = keep
        visit_ConstraintsSetStmt = visit_CreateTrigStmt = keep

        def visit_FuncCall(self, ancestors: Ancestor, node: ast.FuncCall) -> None:
            if _funcname(node) in _HARMLESS_FUNCTIONS:
                return
            selects: list[Ancestor] = []  # the SELECTs whose select list holds the call
            step: Ancestor | None = ancestors
            while step is not None:  # up: step.node is a parent, step.member leads down from it
                if isinstance(step.node, writing):
                    selects.clear()  # a SELECT under a write is analysed with the write
                elif isinstance(step.node, ast.ResTarget) and step.member == "val":
                    target_list = step.parent
                    select = target_list.parent if target_list is not None else None
                    if (
                        select is not None and select.parent is not None
                        and isinstance(select.node, ast.SelectStmt) and select.member == "targetList"
                    ):
                        selects.append(select.parent)
                step = step.parent
            if selects:
                place = _place(ancestors)
                # -1 sorts the call after its SELECT and before every node inside the SELECT.
                self.found.extend(((*_place(select), -1, *place), node) for select in selects)

        def skip(self, ancestors: Ancestor, node: ast.Node) -> type[Skip]:
            return Skip

        # Nothing the finder keeps is ever inside a literal, a column name or a table name.
        visit_A_Const = visit_ColumnRef = visit_RangeVar = skip

    def find(tree: tuple[ast.RawStmt, ...]) -> list[tuple[_Place, ast.Node]]:
        finder = Finder()
        finder(tree)
        return finder.found

    return find


def _place(ancestors: Ancestor) -> _Place:
    """The place of the node that pglast's ``ancestors`` chain leads to: each link holds a
    parent (a node or a tuple) and the member (a name or an index) that leads down from it."""
    steps: list[int] = []
    step = ancestors
    while step.parent is not None:  # the root link leads to the whole tree
        member = step.member
        if isinstance(member, int):
            steps.append(member)
        elif member is not None:
            steps.append(_member_index(step.node, member))
        step = step.parent
    steps.reverse()
    return tuple(steps)


_MEMBER_INDEX: dict[type, dict[str, int]] = {}


def _member_index(node: ast.Node, member: str) -> int:
    """The position of ``member`` among the node's members, in the order the tree is walked."""
    index = _MEMBER_INDEX.get(type(node))
    if index is None:
        index = _MEMBER_INDEX[type(node)] = {name: position for position, name in enumerate(node)}
    return index[member]


# --- what the nodes say -------------------------------------------------------------------------


class _Builder:
    def __init__(self, parameters: Mapping[str, Value], table_columns: Mapping[str, Sequence[str]]) -> None:
        self.parameters = parameters
        self.table_columns = table_columns
        self.writes: list[Write] = []
        self.tables: dict[str, tuple[str, ...]] = {}
        self.types: dict[str, dict[str, str]] = {}
        self.constraints: list[ConstraintDefinition] = []
        self.partitions: dict[str, str] = {}
        self.triggers: list[TriggerDefinition] = []
        self.set_constraints: tuple[tuple[str, ...], bool] | None = None

    # --- dispatch -------------------------------------------------------------------------

    def add(self, node: ast.Node) -> None:
        """Take in one node the finder found."""
        from pglast import ast

        if isinstance(node, ast.InsertStmt):
            self.writes.append(self.insert(node))
        elif isinstance(node, ast.UpdateStmt):
            self.writes.append(self.update(node))
        elif isinstance(node, ast.DeleteStmt):
            self.writes.append(
                Write(WriteKind.DELETE, *_relation(node.relation), where=self.conditions(node.whereClause))
            )
        elif isinstance(node, ast.MergeStmt):
            self.writes.append(Write(WriteKind.MERGE, *_relation(node.relation)))
        elif isinstance(node, ast.CopyStmt) and node.is_from and node.relation is not None:
            columns = tuple(_name(c) for c in node.attlist) if node.attlist else None
            self.writes.append(Write(WriteKind.COPY, *_relation(node.relation), columns=columns))
        elif isinstance(node, ast.CallStmt):
            arguments = tuple(self.value(a) for a in node.funccall.args or ()) if node.funccall else ()
            self.writes.append(Write(WriteKind.CALL, None, function=_funcname(node.funccall), arguments=arguments))
        elif isinstance(node, ast.FuncCall):  # called by a select list
            arguments = tuple(self.value(a) for a in node.args or ())
            self.writes.append(Write(WriteKind.CALL, None, function=_funcname(node), arguments=arguments))
        elif isinstance(node, ast.CreateStmt):
            self.create_table(node)
        elif isinstance(node, ast.AlterTableStmt):
            self.alter_table(node)
        elif isinstance(node, ast.ConstraintsSetStmt):
            names = tuple(_range_name(c) for c in node.constraints) if node.constraints else ("ALL",)
            self.set_constraints = (names, bool(node.deferred))
        elif isinstance(node, ast.DoStmt):
            self.writes.append(Write(WriteKind.CALL, None, function="DO block"))
        elif isinstance(node, ast.CreateTrigStmt):
            self.trigger(node)

    # --- writes ---------------------------------------------------------------------------

    def insert(self, node: ast.InsertStmt) -> Write:
        table, schema = _relation(node.relation)
        columns: tuple[str, ...] | None = tuple(t.name for t in node.cols) if node.cols else None
        if columns is None and table is not None and table in self.table_columns:
            columns = tuple(self.table_columns[table])
        rows = self.insert_rows(node.selectStmt, len(columns) if columns else None)
        return Write(WriteKind.INSERT, table, schema, columns=columns, rows=rows)

    def insert_rows(self, select: ast.Node | None, width: int | None) -> tuple[tuple[Cell, ...], ...] | None:
        from pglast import ast

        if select is None:  # INSERT ... DEFAULT VALUES
            return ((UNKNOWN,) * (width or 0),)
        if not isinstance(select, ast.SelectStmt):  # pragma: no cover - the grammar gives a SELECT
            return None
        if select.valuesLists:
            return tuple(tuple(self.value(v) for v in row) for row in select.valuesLists)
        return self.rows_from_select(select)

    def rows_from_select(self, select: ast.SelectStmt) -> tuple[tuple[Cell, ...], ...] | None:
        """SQLAlchemy's insertmanyvalues, Django's UNNEST, and plain ``SELECT const, ...``."""
        from pglast import ast

        targets = [t.val for t in select.targetList or ()]
        sources = select.fromClause or ()
        if not sources and targets:
            return (tuple(self.value(t) for t in targets),)
        if len(sources) != 1:
            return None
        source = sources[0]
        if (
            isinstance(source, ast.RangeSubselect) and isinstance(source.subquery, ast.SelectStmt)
            and source.subquery.valuesLists and source.alias
        ):
            # INSERT ... SELECT p0::INTEGER, p1 FROM (VALUES ($1, $2, 0), ...) AS imp_sen(p0, p1, sen)
            alias = [_name(c) for c in source.alias.colnames or ()]
            picks = []
            for target in targets:
                column = _column_name(_strip_casts(target))
                if column is None or column not in alias:
                    return None
                picks.append(alias.index(column))
            return tuple(
                tuple(self.value(row[i]) if i < len(row) else UNKNOWN for i in picks)
                for row in source.subquery.valuesLists
            )
        if isinstance(source, ast.RangeFunction) and source.functions and len(source.functions) == 1:
            call = source.functions[0][0]
            star = len(targets) == 1 and isinstance(targets[0], ast.ColumnRef) and isinstance(
                (targets[0].fields or (None,))[-1], ast.A_Star
            )
            if isinstance(call, ast.FuncCall) and _funcname(call) == "unnest" and star:
                arrays = [self.array(arg) for arg in call.args or ()]
                known = [array for array in arrays if array is not None]
                if len(known) < len(arrays):
                    return None
                return tuple(zip(*known, strict=False))
        return None

    def update(self, node: ast.UpdateStmt) -> Write:
        columns: list[str] = []
        values: list[Cell] = []
        for target in node.targetList or ():
            columns.append(target.name)
            values.append(self.value(target.val))
        return Write(
            WriteKind.UPDATE, *_relation(node.relation), columns=tuple(columns), rows=(tuple(values),),
            where=self.conditions(node.whereClause),
        )

    def conditions(self, where: object) -> dict[str, Cell]:
        """``a = 1 AND b = 'x'`` → {"a": "1", "b": "x"}; anything else is left out."""
        from pglast import ast, enums

        found: dict[str, Cell] = {}
        if where is None:
            return found
        if isinstance(where, ast.BoolExpr) and where.boolop == enums.BoolExprType.AND_EXPR:
            for arg in where.args or ():
                found.update(self.conditions(arg))
        elif isinstance(where, ast.A_Expr) and where.kind == enums.A_Expr_Kind.AEXPR_OP and _op(where) == "=":
            for left, right in ((where.lexpr, where.rexpr), (where.rexpr, where.lexpr)):
                column = _column_name(_strip_casts(left))
                if column is not None:
                    found[column] = self.value(right)
                    break
        return found

    # --- values ---------------------------------------------------------------------------

    def value(self, node: object) -> Cell:
        from pglast import ast

        node = _strip_casts(node)
        if isinstance(node, ast.A_Const):
            if node.isnull:
                return None
            return _const_text(node.val)
        if isinstance(node, ast.ParamRef):
            key = f"${node.number}"
            return self.parameters.get(key, UNKNOWN)
        if isinstance(node, ast.A_Expr) and _op(node) == "-" and node.lexpr is None:
            inner = self.value(node.rexpr)
            return f"-{inner}" if isinstance(inner, str) else UNKNOWN
        if isinstance(node, ast.A_ArrayExpr):  # ARRAY[1, 2] as the server prints it: {1,2}
            items = [_strip_casts(e) for e in node.elements or ()]
            values = [self.value(e) for e in items]
            if any(isinstance(e, ast.A_ArrayExpr) for e in items) or any(isinstance(v, UnknownValue) for v in values):
                return UNKNOWN  # nested, or computed
            return "{" + ",".join(_array_output(v) for v in values if not isinstance(v, UnknownValue)) + "}"
        return UNKNOWN

    def array(self, node: object) -> list[Cell] | None:
        from pglast import ast

        node = _strip_casts(node)
        if isinstance(node, ast.A_ArrayExpr):
            return [self.value(e) for e in node.elements or ()]
        text = self.value(node)
        parsed = parse_array_literal(text) if isinstance(text, str) else None
        return None if parsed is None else [*parsed]

    # --- DDL ------------------------------------------------------------------------------

    def create_table(self, node: ast.CreateStmt) -> None:
        from pglast import ast

        table = _relation(node.relation)[0]
        if table is None:  # pragma: no cover - the grammar names the table
            return
        if node.partbound is not None and node.inhRelations:
            self.partitions[table] = node.inhRelations[0].relname
        columns = []
        types: dict[str, str] = {}
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.colname is not None:
                columns.append(element.colname)
                if element.typeName is not None and element.typeName.names:
                    array = "[]" if element.typeName.arrayBounds else ""
                    types[element.colname] = _name(element.typeName.names[-1]) + array
                for constraint in element.constraints or ():
                    self.constraint(table, constraint, (element.colname,))
            elif isinstance(element, ast.Constraint):
                self.constraint(table, element, None)
        self.tables[table] = tuple(columns)
        self.types[table] = types

    def trigger(self, node: ast.CreateTrigStmt) -> None:
        table = _relation(node.relation)[0]
        if table is None or not node.trigname or not node.funcname:  # pragma: no cover - the grammar names them
            return
        events = frozenset(word for bit, word in _TRIGGER_EVENTS.items() if (node.events or 0) & bit)
        self.triggers.append(TriggerDefinition(
            name=node.trigname, table=table, function=_name(node.funcname[-1]), events=events,
            constraint=bool(node.isconstraint), deferrable=bool(node.deferrable) or bool(node.initdeferred),
            initially_deferred=bool(node.initdeferred),
        ))

    def alter_table(self, node: ast.AlterTableStmt) -> None:
        from pglast import ast, enums

        table = _relation(node.relation)[0]
        if table is None:  # pragma: no cover - the grammar names the table
            return
        for command in node.cmds or ():
            if isinstance(command, ast.AlterTableCmd) and isinstance(command.def_, ast.Constraint):
                self.constraint(table, command.def_, None)
            elif (
                isinstance(command, ast.AlterTableCmd) and isinstance(command.def_, ast.PartitionCmd)
                and command.subtype == enums.AlterTableType.AT_AttachPartition
            ):
                partition = _relation(command.def_.name)[0]
                if partition is not None:
                    self.partitions[partition] = table

    def constraint(self, table: str, node: ast.Constraint, column: tuple[str, ...] | None) -> None:
        from pglast import enums

        kinds = {
            enums.ConstrType.CONSTR_FOREIGN: "foreign_key",
            enums.ConstrType.CONSTR_UNIQUE: "unique",
            enums.ConstrType.CONSTR_PRIMARY: "primary_key",
            enums.ConstrType.CONSTR_EXCLUSION: "exclusion",
            enums.ConstrType.CONSTR_CHECK: "check",
        }
        kind = kinds.get(node.contype) if node.contype is not None else None
        if kind is None:
            # A column constraint's DEFERRABLE / INITIALLY DEFERRED come as nodes of their own,
            # after the constraint they qualify.
            if self.constraints and self.constraints[-1].table == table:
                last = self.constraints[-1]
                if node.contype == enums.ConstrType.CONSTR_ATTR_DEFERRABLE:
                    self.constraints[-1] = replace(last, deferrable=True)
                elif node.contype == enums.ConstrType.CONSTR_ATTR_NOT_DEFERRABLE:
                    self.constraints[-1] = replace(last, deferrable=False)
                elif node.contype == enums.ConstrType.CONSTR_ATTR_DEFERRED:
                    self.constraints[-1] = replace(last, deferrable=True, initially_deferred=True)
                elif node.contype == enums.ConstrType.CONSTR_ATTR_IMMEDIATE:
                    self.constraints[-1] = replace(last, initially_deferred=False)
            return
        if kind == "foreign_key":
            columns = tuple(_name(c) for c in node.fk_attrs) if node.fk_attrs else column
        elif kind == "exclusion":
            columns = tuple(_exclusion_column(e) for e in node.exclusions or ())
        else:
            columns = tuple(_name(c) for c in node.keys) if node.keys else column
        columns = columns or ()
        self.constraints.append(
            ConstraintDefinition(
                table=table,
                name=node.conname or default_constraint_name(table, kind, columns),
                kind=kind,
                columns=columns,
                deferrable=bool(node.deferrable) or bool(node.initdeferred),
                initially_deferred=bool(node.initdeferred),
                referenced_table=node.pktable.relname if node.pktable is not None else None,
                referenced_columns=tuple(_name(c) for c in node.pk_attrs) if node.pk_attrs else (),
            )
        )


_NAME_SUFFIX = {"foreign_key": "fkey", "unique": "key", "primary_key": "pkey", "exclusion": "excl", "check": "check"}


class LockTaken(str, Enum):
    """What kind of lock a statement takes that another transaction may wait for (issue 28)."""

    ROW = "row"  # UPDATE, DELETE, SELECT ... FOR UPDATE/SHARE, the row an INSERT wrote
    TABLE = "table"  # LOCK TABLE
    ADVISORY = "advisory"  # pg_advisory_lock() and friends

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock a statement takes, as far as its text says.

    Attributes:
        kind: on rows, a table, or an advisory key.
        table: the table (rows and tables), without schema.
        verb: what took it, in words: ``updated``, ``deleted``, ``locked (FOR UPDATE)``,
            ``inserted``, ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE``, ``called pg_advisory_lock(7)``.
        where: for rows, the ``column = value`` conditions that pick them (an INSERT's values).
        arguments: for advisory locks, the call's arguments (UNKNOWN where computed).
    """

    kind: LockTaken
    table: str | None
    verb: str
    where: Mapping[str, Cell] = field(default_factory=dict)
    arguments: tuple[Cell, ...] = ()


#: The functions that take an advisory lock (pg_try_* only when they return true, unknown here).
_ADVISORY_FUNCTIONS = frozenset({
    "pg_advisory_lock", "pg_advisory_xact_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock", "pg_try_advisory_xact_lock", "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock_shared",
})
#: pglast's LockClauseStrength, in SQL.
_STRENGTHS = {1: "FOR KEY SHARE", 2: "FOR SHARE", 3: "FOR NO KEY UPDATE", 4: "FOR UPDATE"}
_LOCK_MODES = {
    1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE", 5: "SHARE",
    6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE",
}


def statement_locks(text: str, parameters: Mapping[str, Value] | None = None,
                    table_columns: Mapping[str, Sequence[str]] | None = None) -> tuple[Lock, ...]:
    """The locks a statement's text says it takes, in the order of the text (issue 28): what
    another transaction may then wait for until this one ends.

    >>> [(lk.kind.value, lk.table, lk.verb, dict(lk.where)) for lk in statement_locks(
    ...     "SELECT * FROM acct WHERE id = $1 FOR UPDATE", {"$1": "2"})]
    [('row', 'acct', 'locked (FOR UPDATE)', {'id': '2'})]
    >>> [(lk.kind.value, lk.verb) for lk in statement_locks("LOCK TABLE a, b IN SHARE MODE")]
    [('table', 'LOCK TABLE a IN SHARE MODE'), ('table', 'LOCK TABLE b IN SHARE MODE')]
    """
    from pglast import ast, parse_sql
    from pglast.parser import ParseError
    from pglast.visitors import Visitor

    try:
        tree = parse_sql(text)
    except (ParseError, ValueError, RecursionError, MemoryError):
        return ()
    builder = _Builder(parameters or {}, table_columns or {})
    locks: list[tuple[_Place, Lock]] = []

    class Finder(Visitor):
        def visit_UpdateStmt(self, ancestors: Ancestor, node: ast.UpdateStmt) -> None:
            table, _ = _relation(node.relation)
            locks.append((_place(ancestors), Lock(LockTaken.ROW, table, "updated", builder.conditions(node.whereClause))))

        def visit_DeleteStmt(self, ancestors: Ancestor, node: ast.DeleteStmt) -> None:
            table, _ = _relation(node.relation)
            locks.append((_place(ancestors), Lock(LockTaken.ROW, table, "deleted", builder.conditions(node.whereClause))))

        def visit_InsertStmt(self, ancestors: Ancestor, node: ast.InsertStmt) -> None:
            write = builder.insert(node)
            for row in write.rows or ((),):
                where = dict(zip(write.columns or (), row, strict=False))
                locks.append((_place(ancestors), Lock(LockTaken.ROW, write.table, "inserted", where)))

        def visit_SelectStmt(self, ancestors: Ancestor, node: ast.SelectStmt) -> None:
            if not node.lockingClause or not node.fromClause:
                return
            strength = _STRENGTHS.get(int(node.lockingClause[0].strength or 0), "FOR UPDATE")
            tables = [item for item in node.fromClause if isinstance(item, ast.RangeVar)]
            where = builder.conditions(node.whereClause) if len(tables) == 1 else {}
            for item in tables:
                locks.append((_place(ancestors), Lock(LockTaken.ROW, item.relname, f"locked ({strength})", where)))

        def visit_LockStmt(self, ancestors: Ancestor, node: ast.LockStmt) -> None:
            mode = _LOCK_MODES.get(int(node.mode or 8), "ACCESS EXCLUSIVE")
            for relation in node.relations or ():
                verb = f"LOCK TABLE {relation.relname} IN {mode} MODE"
                locks.append((_place(ancestors), Lock(LockTaken.TABLE, relation.relname, verb)))

        def visit_FuncCall(self, ancestors: Ancestor, node: ast.FuncCall) -> None:
            name = _funcname(node).rsplit(".", 1)[-1]
            if name in _ADVISORY_FUNCTIONS:
                arguments = tuple(builder.value(a) for a in node.args or ())
                shown = ", ".join(a if isinstance(a, str) else "…" for a in arguments)
                locks.append((_place(ancestors), Lock(LockTaken.ADVISORY, None, f"called {name}({shown})",
                                                      arguments=arguments)))

    Finder()(tree)
    locks.sort(key=lambda item: item[0])
    return tuple(lock for _, lock in locks)


def default_constraint_name(table: str, kind: str, columns: Sequence[str]) -> str:
    """The name PostgreSQL gives an unnamed constraint (before any numbering to avoid a clash).

    >>> default_constraint_name("orders", "foreign_key", ["customer_id"])
    'orders_customer_id_fkey'
    """
    if kind == "primary_key":
        return f"{table}_pkey"
    return "_".join([table, *columns, _NAME_SUFFIX[kind]])[:63]


_HARMLESS_FUNCTIONS = frozenset({
    "count", "sum", "min", "max", "avg", "now", "current_timestamp", "coalesce", "length", "lower",
    "upper", "pg_sleep", "set_config", "current_setting", "version", "pg_backend_pid", "to_char",
    "pg_rotate_logfile", "pg_reload_conf", "txid_current", "pg_current_xact_id", "generate_series",
})


def _arguments(execute: ast.ExecuteStmt) -> tuple[Value, ...]:
    """The arguments of ``EXECUTE name(...)``: a constant's text, None for NULL and for anything else."""
    from pglast import ast

    values: list[Value] = []
    for param in execute.params or ():
        value = _strip_casts(param)
        values.append(_const_text(value.val) if isinstance(value, ast.A_Const) and not value.isnull else None)
    return tuple(values)


def _relation(node: ast.RangeVar | None) -> tuple[str | None, str | None]:
    """(table, schema)."""
    return (None, None) if node is None else (node.relname, node.schemaname)


def _name(node: object) -> str:
    return str(getattr(node, "sval", node))


def _range_name(node: ast.RangeVar) -> str:
    return node.relname or ""


def _exclusion_column(element: tuple[Any, ...]) -> str:
    index_elem = element[0]
    name: str = index_elem.name or "expression"
    return name


def _funcname(call: ast.FuncCall | None) -> str:
    return "" if call is None else ".".join(_name(part) for part in call.funcname or ())


def _op(expr: ast.A_Expr) -> str:
    return _name(expr.name[-1]) if expr.name else ""


def _array_output(value: Value) -> str:
    """An array element as PostgreSQL's array output writes it: quoted when empty, ``NULL`` as
    text, or holding a brace, quote, comma, backslash or space.

    >>> [_array_output(v) for v in ("1", "x y", None, "NULL", 'a"b')]
    ['1', '"x y"', 'NULL', '"NULL"', '"a\\\\"b"']
    """
    if value is None:
        return "NULL"
    if value == "" or value.upper() == "NULL" or any(c in value for c in '{}",\\') or any(c.isspace() for c in value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _strip_casts(node: object) -> object:
    from pglast import ast

    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _column_name(node: object) -> str | None:
    from pglast import ast

    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    return None


def _const_text(value: object) -> Value:
    from pglast import ast

    if isinstance(value, ast.Integer):
        return str(value.ival)
    if isinstance(value, ast.Float):
        return value.fval
    if isinstance(value, ast.String):
        return value.sval
    if isinstance(value, ast.Boolean):
        return "t" if value.boolval else "f"
    if isinstance(value, ast.BitString):
        return value.bsval
    return None


def statements_in(text: str) -> tuple[str, ...] | None:
    """The statements of a query string that holds more than one, or None.

    A query sent with the simple protocol may hold several statements (``psql -c "BEGIN; ...;
    COMMIT"``, scripts, some ORMs' batches): the server logs it as one statement.

    >>> statements_in("BEGIN; INSERT INTO t VALUES (';'); COMMIT;")
    ('BEGIN', "INSERT INTO t VALUES (';')", 'COMMIT')
    >>> statements_in("DO $$ BEGIN PERFORM 1; END $$;") is None
    True
    """
    if not may_hold_several(text):
        return None
    from pglast import split
    from pglast.parser import ParseError

    try:
        parts = tuple(split(text))
    except ParseError:  # a statement the parser refuses: the scanner still tells them apart
        try:
            parts = tuple(split(text, with_parser=False))
        except (ParseError, ValueError):
            return None
    return parts if len(parts) > 1 else None


#: Statements remembered by :func:`fingerprint`: an export asks for the same culprit statement
#: again and again (a job repeating one bad write), and parsing is slow (issue 29 §5: once per
#: distinct statement).
_FINGERPRINTS_CACHED = 4096


@lru_cache(maxsize=_FINGERPRINTS_CACHED)
def fingerprint(text: str) -> str | None:
    """pglast's fingerprint of a statement: the same for statements that differ only in constants.

    >>> fingerprint("INSERT INTO t VALUES (1)") == fingerprint("INSERT INTO t VALUES (42)")
    True
    """
    from pglast import fingerprint as pg_fingerprint
    from pglast.parser import ParseError

    try:
        return str(pg_fingerprint(text))
    except (ParseError, ValueError):
        return None


#: Characters of a statement's shape kept (the statement normalised).
SHAPE_CHARS = 300


@lru_cache(maxsize=4096)
def statement_shape(text: str) -> tuple[str | None, str]:
    """(pglast's fingerprint, the statement with its constants as ``$n``) of a statement; the
    fingerprint is None when it does not parse (then the text stands for its shape).

    >>> statement_shape("INSERT INTO t VALUES (42, 'x');")[1]
    'INSERT INTO t VALUES ($1, $2);'
    >>> statement_shape("INSERT INTO t VALUES (1, 'y')")[0] == statement_shape("insert into t values ($1, $2)")[0]
    True
    """
    from pglast import parser

    try:
        return str(parser.fingerprint(text)), parser.normalize(text)[:SHAPE_CHARS]
    except (parser.ParseError, ValueError):
        return None, text[:SHAPE_CHARS]


def shape(text: str) -> str | None:
    """A statement with its constants and parameters normalised (``$1``, ``$2`` …), its first
    :data:`SHAPE_CHARS` characters: what statements of one fingerprint look like (the Parquet
    column ``culprit_shape``); None if pglast cannot parse it.

    >>> shape("INSERT INTO t VALUES (42, 'x')")
    'INSERT INTO t VALUES ($1, $2)'
    """
    found, normalised = statement_shape(text)
    return normalised if found is not None else None


def same_value(written: Cell, printed: str | None, type_name: str | None = None) -> bool:
    """Whether a written value is the key value PostgreSQL printed (42 = '42' = 42.0 for numbers).

    >>> same_value("42", "42"), same_value("042", "42"), same_value("x", "y")
    (True, True, False)
    """
    if isinstance(written, UnknownValue):
        return False
    if written is None or printed is None:
        return written is None and printed in (None, "null")
    if written == printed:
        return True
    try:
        return Decimal(written) == Decimal(printed)
    except (InvalidOperation, ValueError):
        # a value in another form than the server's: a range, a timestamp, jsonb... (issue 26)
        return same_canonical(written, printed, type_name)
