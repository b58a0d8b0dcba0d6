// The SQL endpoint through the PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java,
// the driver behind Metabase, DBeaver and Tableau): DatabaseMetaData lists the tables and
// their columns, a PreparedStatement with timestamptz and text parameters runs past the
// driver's prepare threshold (server-prepared, binary results), and a cursor reads in
// pages (fetch size, autocommit off). Prints `key=value` lines for
// tests/tests/sql_clients.rs.
//
// usage: java -cp /usr/share/java/postgresql.jar JdbcProbe.java URL USER PASSWORD FROM_MS TO_MS
import java.sql.*;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

public class JdbcProbe {
    public static void main(String[] args) throws Exception {
        OffsetDateTime from = OffsetDateTime.ofInstant(Instant.ofEpochMilli(Long.parseLong(args[3])), ZoneOffset.UTC);
        OffsetDateTime to = OffsetDateTime.ofInstant(Instant.ofEpochMilli(Long.parseLong(args[4])), ZoneOffset.UTC);
        try (Connection conn = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData meta = conn.getMetaData();
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            System.out.println("tables=" + String.join(",", tables));
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "public", "revenue", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
            }
            System.out.println("columns=" + String.join(",", columns));

            String sql = "SELECT window_start, device, views FROM page_views "
                + "WHERE window_start >= ? AND window_start < ? AND country = ? ORDER BY 1, 2";
            long firstSum = -1;
            int firstRows = -1;
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int run = 0; run < 7; run++) {
                    ps.setObject(1, from);
                    ps.setObject(2, to);
                    ps.setString(3, "US");
                    long sum = 0;
                    int rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            rs.getObject(1, OffsetDateTime.class);
                            sum += rs.getLong(3);
                            rows++;
                        }
                    }
                    if (run == 0) { firstSum = sum; firstRows = rows; }
                    else if (sum != firstSum || rows != firstRows) throw new AssertionError("run " + run + " differs");
                }
            }
            System.out.println("us_rows=" + firstRows);
            System.out.println("us_views=" + firstSum);

            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT url, views FROM page_views WHERE window_start >= ? AND window_start < ?")) {
                ps.setFetchSize(10);
                ps.setObject(1, from);
                ps.setObject(2, to);
                long rows = 0, views = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) { rows++; views += rs.getLong(2); }
                }
                System.out.println("paged_rows=" + rows);
                System.out.println("paged_views=" + views);
            }
            conn.commit();
        }
    }
}
