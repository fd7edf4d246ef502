"""What a statement wrote, from its SQL: the only module that imports pglast.

Statements are parsed only for transactions that ended in an incident (pglast parses about 10k
statements a second), so callers hand in one statement's text and its bind parameters and get
back the writes it made: table, columns, and the rows' values where the text says them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from logdiag.diagnosis.statements import may_hold_several

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
    """

    kind: WriteKind
    table: str | None
    schema: str | None = None
    columns: tuple[str, ...] | None = None
    rows: tuple[tuple[Cell, ...], ...] | None = None
    where: Mapping[str, Cell] = field(default_factory=dict)
    function: str | None = None

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


@dataclass(frozen=True, slots=True)
class StatementWrites:
    """What one statement's text writes, and the DDL it declares: everything logdiag learns from it.

    Attributes:
        writes: the writes, in order.
        tables: for CREATE TABLE, each table's column order.
        constraints: constraints declared by CREATE TABLE or ALTER TABLE.
        partitions: each partition's partitioned table (``CREATE TABLE ... PARTITION OF``,
            ``ALTER TABLE ... ATTACH PARTITION``).
        set_constraints: for SET CONSTRAINTS, (names or ("ALL",), deferred?).
        error: why the text could not be parsed, or None.
    """

    writes: tuple[Write, ...] = ()
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    constraints: tuple[ConstraintDefinition, ...] = ()
    partitions: Mapping[str, str] = field(default_factory=dict)
    set_constraints: tuple[tuple[str, ...], bool] | None = None
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
    """
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        statements = parse_sql(text)
    except ParseError as exc:
        return StatementWrites(error=f"not parsed: {exc}")
    except (ValueError, RecursionError, MemoryError) as exc:  # pragma: no cover - defensive
        return StatementWrites(error=f"not parsed: {type(exc).__name__}")
    builder = _Builder(parameters or {}, table_columns or {})
    for raw in statements:
        builder.statement(raw.stmt)
    return StatementWrites(
        writes=tuple(builder.writes),
        tables=builder.tables,
        constraints=tuple(builder.constraints),
        partitions=builder.partitions,
        set_constraints=builder.set_constraints,
        error=None,
    )


class _Builder:
    def __init__(self, parameters: Mapping[str, Value], table_columns: Mapping[str, Sequence[str]]) -> None:
        self.parameters = parameters
        self.table_columns = table_columns
        self.writes: list[Write] = []
        self.tables: dict[str, tuple[str, ...]] = {}
        self.constraints: list[ConstraintDefinition] = []
        self.partitions: dict[str, str] = {}
        self.set_constraints: tuple[tuple[str, ...], bool] | None = None

    # --- dispatch -------------------------------------------------------------------------

    def statement(self, node: Any) -> None:
        from pglast import ast

        inside_writes = _nodes_inside_writes(node)
        for found in _walk(node):
            if isinstance(found, ast.InsertStmt):
                self.writes.append(self.insert(found))
            elif isinstance(found, ast.UpdateStmt):
                self.writes.append(self.update(found))
            elif isinstance(found, ast.DeleteStmt):
                self.writes.append(
                    Write(WriteKind.DELETE, *_relation(found.relation), where=self.conditions(found.whereClause))
                )
            elif isinstance(found, ast.MergeStmt):
                self.writes.append(Write(WriteKind.MERGE, *_relation(found.relation)))
            elif isinstance(found, ast.CopyStmt) and found.is_from and found.relation is not None:
                columns = tuple(_name(c) for c in found.attlist) if found.attlist else None
                self.writes.append(Write(WriteKind.COPY, *_relation(found.relation), columns=columns))
            elif isinstance(found, ast.CallStmt):
                self.writes.append(Write(WriteKind.CALL, None, function=_funcname(found.funccall)))
            elif isinstance(found, ast.SelectStmt) and id(found) not in inside_writes:
                self.calls_in_select(found)
            elif isinstance(found, ast.CreateStmt):
                self.create_table(found)
            elif isinstance(found, ast.AlterTableStmt):
                self.alter_table(found)
            elif isinstance(found, ast.ConstraintsSetStmt):
                names = tuple(_range_name(c) for c in found.constraints) if found.constraints else ("ALL",)
                self.set_constraints = (names, bool(found.deferred))
            elif isinstance(found, ast.DoStmt):
                self.writes.append(Write(WriteKind.CALL, None, function="DO block"))

    # --- writes ---------------------------------------------------------------------------

    def insert(self, node: Any) -> Write:
        schema_table = _relation(node.relation)
        columns: tuple[str, ...] | None = tuple(t.name for t in node.cols) if node.cols else None
        if columns is None and schema_table[0] in self.table_columns:
            columns = tuple(self.table_columns[schema_table[0]])
        rows = self.insert_rows(node.selectStmt, len(columns) if columns else None)
        return Write(WriteKind.INSERT, *schema_table, columns=columns, rows=rows)

    def insert_rows(self, select: Any, width: int | None) -> tuple[tuple[Cell, ...], ...] | None:
        if select is None:  # INSERT ... DEFAULT VALUES
            return ((UNKNOWN,) * (width or 0),)
        if select.valuesLists:
            return tuple(tuple(self.value(v) for v in row) for row in select.valuesLists)
        return self.rows_from_select(select)

    def rows_from_select(self, select: Any) -> tuple[tuple[Cell, ...], ...] | None:
        """SQLAlchemy's insertmanyvalues, Django's UNNEST, and plain ``SELECT const, ...``."""
        from pglast import ast

        targets = [t.val for t in select.targetList or ()]
        sources = select.fromClause or ()
        if not sources and targets:
            return (tuple(self.value(t) for t in targets),)
        if len(sources) != 1:
            return None
        source = sources[0]
        if isinstance(source, ast.RangeSubselect) and source.subquery.valuesLists and source.alias:
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
        if isinstance(source, ast.RangeFunction) and len(source.functions) == 1:
            call = source.functions[0][0]
            star = len(targets) == 1 and isinstance(targets[0], ast.ColumnRef) and isinstance(
                targets[0].fields[-1], ast.A_Star
            )
            if isinstance(call, ast.FuncCall) and _funcname(call) == "unnest" and star:
                arrays = [self.array(arg) for arg in call.args or ()]
                if any(a is None for a in arrays):
                    return None
                return tuple(zip(*arrays, strict=False))  # type: ignore[misc]
        return None

    def update(self, node: Any) -> Write:
        columns, values = [], []
        for target in node.targetList or ():
            columns.append(target.name)
            values.append(self.value(target.val))
        return Write(
            WriteKind.UPDATE, *_relation(node.relation), columns=tuple(columns), rows=(tuple(values),),
            where=self.conditions(node.whereClause),
        )

    def calls_in_select(self, select: Any) -> None:
        from pglast import ast

        for target in select.targetList or ():
            for found in _walk(target.val):
                if isinstance(found, ast.FuncCall) and _funcname(found) not in _HARMLESS_FUNCTIONS:
                    self.writes.append(Write(WriteKind.CALL, None, function=_funcname(found)))

    def conditions(self, where: Any) -> dict[str, Cell]:
        """``a = 1 AND b = 'x'`` → {"a": "1", "b": "x"}; anything else is left out."""
        from pglast import ast, enums

        found: dict[str, Cell] = {}
        if where is None:
            return found
        if isinstance(where, ast.BoolExpr) and where.boolop == enums.BoolExprType.AND_EXPR:
            for arg in where.args:
                found.update(self.conditions(arg))
        elif isinstance(where, ast.A_Expr) and where.kind == enums.A_Expr_Kind.AEXPR_OP and _op(where) == "=":
            for left, right in ((where.lexpr, where.rexpr), (where.rexpr, where.lexpr)):
                column = _column_name(_strip_casts(left))
                if column is not None:
                    found[column] = self.value(right)
                    break
        return found

    # --- values ---------------------------------------------------------------------------

    def value(self, node: Any) -> Cell:
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
        return UNKNOWN

    def array(self, node: Any) -> list[Cell] | None:
        from pglast import ast

        node = _strip_casts(node)
        if isinstance(node, ast.A_ArrayExpr):
            return [self.value(e) for e in node.elements or ()]
        text = self.value(node)
        if isinstance(text, str):
            return parse_array_literal(text)
        return None

    # --- DDL ------------------------------------------------------------------------------

    def create_table(self, node: Any) -> None:
        from pglast import ast

        table = node.relation.relname
        if node.partbound is not None and node.inhRelations:
            self.partitions[table] = node.inhRelations[0].relname
        columns = []
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                columns.append(element.colname)
                for constraint in element.constraints or ():
                    self.constraint(table, constraint, (element.colname,))
            elif isinstance(element, ast.Constraint):
                self.constraint(table, element, None)
        self.tables[table] = tuple(columns)

    def alter_table(self, node: Any) -> None:
        from pglast import ast, enums

        table = node.relation.relname
        for command in node.cmds or ():
            if isinstance(command, ast.AlterTableCmd) and isinstance(command.def_, ast.Constraint):
                self.constraint(table, command.def_, None)
            elif (
                isinstance(command, ast.AlterTableCmd) and isinstance(command.def_, ast.PartitionCmd)
                and command.subtype == enums.AlterTableType.AT_AttachPartition
            ):
                self.partitions[command.def_.name.relname] = table

    def constraint(self, table: str, node: Any, column: tuple[str, ...] | None) -> None:
        from pglast import enums

        kinds = {
            enums.ConstrType.CONSTR_FOREIGN: "foreign_key",
            enums.ConstrType.CONSTR_UNIQUE: "unique",
            enums.ConstrType.CONSTR_PRIMARY: "primary_key",
            enums.ConstrType.CONSTR_EXCLUSION: "exclusion",
            enums.ConstrType.CONSTR_CHECK: "check",
        }
        kind = kinds.get(node.contype)
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
            )
        )


_NAME_SUFFIX = {"foreign_key": "fkey", "unique": "key", "primary_key": "pkey", "exclusion": "excl", "check": "check"}


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


def _walk(node: Any) -> Iterator[Any]:
    """Every AST node under ``node``, depth first, the node itself included."""
    from pglast import ast

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Node):
            yield current
            children = [getattr(current, name, None) for name in current.__slots__]
            stack.extend(reversed([c for c in children if c is not None]))
        elif isinstance(current, (tuple, list)):
            stack.extend(reversed(current))


def _nodes_inside_writes(root: Any) -> set[int]:
    """Ids of the nodes that are part of an INSERT/UPDATE/DELETE/MERGE (analysed there)."""
    from pglast import ast

    inside: set[int] = set()
    for found in _walk(root):
        if id(found) not in inside and isinstance(
            found, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
        ):
            inside.update(id(inner) for inner in _walk(found))
    return inside


def _relation(node: Any) -> tuple[str | None, str | None]:
    return node.relname, node.schemaname


def _name(node: Any) -> str:
    return str(getattr(node, "sval", node))


def _range_name(node: Any) -> str:
    return node.relname


def _exclusion_column(element: Any) -> str:
    index_elem = element[0]
    return index_elem.name or "expression"


def _funcname(call: Any) -> str:
    return ".".join(_name(part) for part in call.funcname)


def _op(expr: Any) -> str:
    return _name(expr.name[-1]) if expr.name else ""


def _strip_casts(node: Any) -> Any:
    from pglast import ast

    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _column_name(node: Any) -> str | None:
    from pglast import ast

    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    return None


def _const_text(value: Any) -> Value:
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


def parse_array_literal(text: str) -> list[Cell] | None:
    """``{1,2,"a, b",NULL}`` → ['1', '2', 'a, b', None]; None if it is not a one-dimensional array.

    >>> parse_array_literal('{1,2,"x, \\\\"y\\\\"",NULL}')
    ['1', '2', 'x, "y"', None]
    """
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    body = text[1:-1]
    if not body:
        return []
    items: list[Cell] = []
    current: list[str] = []
    quoted = escaped = was_quoted = False
    for char in body:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
            was_quoted = True
        elif char == "," and not quoted:
            items.append(_array_item("".join(current), was_quoted))
            current, was_quoted = [], False
        elif char == "{" and not quoted:
            return None
        else:
            current.append(char)
    items.append(_array_item("".join(current), was_quoted))
    return items


def _array_item(text: str, was_quoted: bool) -> Cell:
    if not was_quoted and text.strip().upper() == "NULL":
        return None
    return text if was_quoted else text.strip()


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


def same_value(written: Cell, printed: str | None) -> bool:
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
        return False
